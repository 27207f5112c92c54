package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// everything makes every part and moves every metric once, so that each
// family has a series to lint and to look up.
func everything(t *testing.T) *metrics.Registry {
	t.Helper()
	q := natstest.Queue(t, queue.Config{})
	_, err := q.SubmitterConsumer(context.Background())
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	reg.WatchConsumers(q.JS, metrics.ConsumerRef{Stream: event.StreamJobs, Consumer: queue.ConsumerSubmitter})

	s := reg.Submitter()
	s.SetConcurrency(4)
	s.ConvertStarted()(errors.New("boom"), "500", metrics.KindServerError)
	s.ConvertStarted()(nil, "", "")
	s.Accepted(&event.Job{Source: event.Source{DurationSecs: 60}, Pricing: &event.Pricing{PerHour: 0.4, Multiplier: 1, Currency: "USD"}})
	s.Failed()
	s.Retried(metrics.RetryError)
	s.DeadLettered()
	s.WatchSlots(func(context.Context) (int, int, error) { return 3, 10, nil })

	in := reg.Ingress()
	in.Delivery(metrics.WebhookBadSignature)
	in.Stored(time.Millisecond, false)
	in.Replayed()
	in.WatchSpool(&metrics.SpoolStats{Pending: func() int { return 2 }, Bytes: func() int64 { return 100 }})

	snk := reg.Sink()
	snk.Commit(10, 5*time.Millisecond, nil)
	snk.Applied(event.TypeCompleted)
	snk.DeadLettered()

	rec := reg.Reconciler()
	rec.Outcome(metrics.RecoveryRecovered, 1)
	rec.Round(time.Now(), false, nil)
	return reg
}

func TestNamesFollowPrometheusConventions(t *testing.T) {
	t.Parallel()
	reg := everything(t)
	problems, err := testutil.GatherAndLint(reg.Gatherer())
	require.NoError(t, err)
	require.Empty(t, problems, "promlint")

	mfs, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	var ours []string
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		require.True(t, strings.HasPrefix(name, "scribeq_"), "%s lacks the scribeq_ prefix", name)
		ours = append(ours, name)
	}
	_, ok := metricstest.Sum(t, reg.Gatherer(), "go_goroutines")
	require.True(t, ok, "the Go collector is registered")
	require.Contains(t, ours, "scribeq_consumer_pending_messages")
	require.Contains(t, ours, "scribeq_slots_in_use")
	require.Contains(t, ours, "scribeq_webhook_spool_pending")
}

// The dashboard may only chart metrics that exist.
func TestDashboardUsesExistingMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/grafana/scribeq.json")
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash), "the dashboard is JSON")
	require.NotEmpty(t, dash.Panels)

	mfs, err := everything(t).Gatherer().Gather()
	require.NoError(t, err)
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	name := regexp.MustCompile(`scribeq_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			continue // a row
		}
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := n
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && have[b] {
						base = b
					}
				}
				require.True(t, have[base], "panel %q charts %s, which no scribeq process exports", p.Title, n)
				used[base] = true
			}
		}
	}
	for _, want := range []string{
		"scribeq_job_transitions_total", "scribeq_submitter_convert_duration_seconds",
		"scribeq_submitter_convert_errors_total", "scribeq_slots_in_use", "scribeq_slots_limit",
		"scribeq_webhook_deliveries_total", "scribeq_sink_batch_size", "scribeq_sink_commit_duration_seconds",
		"scribeq_consumer_pending_messages", "scribeq_estimated_cost_total", "scribeq_reconciler_recoveries_total",
	} {
		require.True(t, used[want], "the dashboard charts %s", want)
	}
}

func TestNilRecordsNothing(t *testing.T) {
	t.Parallel()
	var reg *metrics.Registry
	require.Nil(t, reg.Submitter())
	require.Nil(t, reg.Ingress())
	require.Nil(t, reg.Sink())
	require.Nil(t, reg.Reconciler())
	require.Nil(t, reg.Registerer())
	reg.WatchConsumers(nil)
	// Every method of a nil part is callable.
	reg.Submitter().SetConcurrency(1)
	reg.Submitter().ConvertStarted()(errors.New("x"), "500", metrics.KindServerError)
	reg.Submitter().Accepted(&event.Job{})
	reg.Submitter().Failed()
	reg.Submitter().Retried(metrics.RetryWait)
	reg.Submitter().DeadLettered()
	reg.Submitter().WatchSlots(nil)
	reg.Ingress().Delivery(metrics.WebhookOK)
	reg.Ingress().Stored(time.Second, true)
	reg.Ingress().Replayed()
	reg.Ingress().WatchSpool(nil)
	reg.Sink().Commit(1, time.Second, nil)
	reg.Sink().Applied(event.TypeQueued)
	reg.Sink().DeadLettered()
	reg.Reconciler().Outcome(metrics.RecoveryLost, 1)
	reg.Reconciler().Round(time.Now(), true, nil)
	mfs, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	require.Empty(t, mfs)
}

func TestAcceptedJobsCountAudioAndCost(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	s := reg.Submitter()
	// Half an hour at 0.40 an hour, +50 % for surcharges: 0.30.
	s.Accepted(&event.Job{Source: event.Source{DurationSecs: 1800}, Pricing: &event.Pricing{PerHour: 0.4, Multiplier: 1.5, Currency: "USD"}})
	// An hour at 0.36 with no multiplier recorded (older intake): 0.36.
	s.Accepted(&event.Job{Source: event.Source{DurationSecs: 3600}, Pricing: &event.Pricing{PerHour: 0.36, Currency: "EUR"}})
	// No pricing: audio counted, cost not.
	s.Accepted(&event.Job{Source: event.Source{DurationSecs: 60}})
	// Unknown duration: neither.
	s.Accepted(&event.Job{Pricing: &event.Pricing{PerHour: 0.4, Multiplier: 1, Currency: "USD"}})
	s.Failed()

	err := testutil.GatherAndCompare(reg.Gatherer(), strings.NewReader(`
# HELP scribeq_estimated_cost_total Estimated cost of the jobs ElevenLabs accepted, in the currency of each job's pricing.
# TYPE scribeq_estimated_cost_total counter
scribeq_estimated_cost_total{currency="EUR"} 0.36
scribeq_estimated_cost_total{currency="USD"} 0.30000000000000004
# HELP scribeq_submitter_accepted_audio_seconds_total Audio duration of the jobs ElevenLabs accepted (known durations only).
# TYPE scribeq_submitter_accepted_audio_seconds_total counter
scribeq_submitter_accepted_audio_seconds_total 5460
# HELP scribeq_job_transitions_total Job state changes, counted once by the process that decides them (submitter, ingress, reconciler).
# TYPE scribeq_job_transitions_total counter
scribeq_job_transitions_total{from="queued",to="failed"} 1
scribeq_job_transitions_total{from="queued",to="submitted"} 4
`), "scribeq_estimated_cost_total", "scribeq_submitter_accepted_audio_seconds_total", "scribeq_job_transitions_total")
	require.NoError(t, err)
}

func TestConvertCallsInFlightAndErrors(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	s := reg.Submitter()
	s.SetConcurrency(4)
	g := reg.Gatherer()
	first, second := s.ConvertStarted(), s.ConvertStarted()
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_submitter_convert_in_flight"))
	first(nil, "", "")
	second(errors.New("429"), "429", metrics.KindConcurrencyLimit)
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_submitter_convert_in_flight"))
	require.Equal(t, 4.0, metricstest.Value(t, g, "scribeq_submitter_convert_concurrency"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_duration_seconds", "outcome", metrics.ConvertAccepted))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_duration_seconds", "outcome", metrics.ConvertError))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_errors_total", "status", "429", "kind", metrics.KindConcurrencyLimit))
}

func TestWebhookOutcomesStartAtZero(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := reg.Ingress()
	g := reg.Gatherer()
	for _, o := range []string{metrics.WebhookOK, metrics.WebhookBadSignature, metrics.WebhookStale, metrics.WebhookTooLarge, metrics.WebhookSpooled} {
		v, ok := metricstest.Sum(t, g, "scribeq_webhook_deliveries_total", "outcome", o)
		require.True(t, ok, "%s exists before the first webhook, so rate() sees its first one", o)
		require.Zero(t, v)
	}
	m.Stored(10*time.Millisecond, true)
	m.Replayed()
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_deliveries_total", "outcome", metrics.WebhookSpooled))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_spool_replayed_total"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"),
		"a spooled webhook is a transition once, when it is published")
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_webhook_spool_pending"), "no spool watched")
	m.WatchSpool(&metrics.SpoolStats{Pending: func() int { return 7 }, Bytes: func() int64 { return 4096 }})
	require.Equal(t, 7.0, metricstest.Value(t, g, "scribeq_webhook_spool_pending"))
	require.Equal(t, 4096.0, metricstest.Value(t, g, "scribeq_webhook_spool_bytes"))
}

func TestSinkCommits(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := reg.Sink()
	m.Commit(500, 40*time.Millisecond, nil)
	m.Commit(3, time.Millisecond, nil)
	m.Commit(500, time.Second, errors.New("connection reset"))
	m.Applied(event.TypeCompleted)
	m.Applied(event.TypeCompleted)
	m.DeadLettered()
	g := reg.Gatherer()
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_sink_batch_size"), "failed batches are not observed")
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_sink_commit_duration_seconds"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_sink_commit_errors_total"))
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_sink_events_total", "type", "completed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_dead_letters_total", "stream", event.StreamEvents))
	err := testutil.GatherAndCompare(g, strings.NewReader(`
# HELP scribeq_sink_batch_size Events applied per committed Postgres transaction.
# TYPE scribeq_sink_batch_size histogram
scribeq_sink_batch_size_bucket{le="1"} 0
scribeq_sink_batch_size_bucket{le="2"} 0
scribeq_sink_batch_size_bucket{le="5"} 1
scribeq_sink_batch_size_bucket{le="10"} 1
scribeq_sink_batch_size_bucket{le="25"} 1
scribeq_sink_batch_size_bucket{le="50"} 1
scribeq_sink_batch_size_bucket{le="100"} 1
scribeq_sink_batch_size_bucket{le="250"} 1
scribeq_sink_batch_size_bucket{le="500"} 2
scribeq_sink_batch_size_bucket{le="1000"} 2
scribeq_sink_batch_size_bucket{le="2500"} 2
scribeq_sink_batch_size_bucket{le="+Inf"} 2
scribeq_sink_batch_size_sum 503
scribeq_sink_batch_size_count 2
`), "scribeq_sink_batch_size")
	require.NoError(t, err)
}

func TestReconcilerRounds(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := reg.Reconciler()
	at := time.Unix(1_800_000_000, 0)
	m.Outcome(metrics.RecoveryRecovered, 3)
	m.Outcome(metrics.RecoveryLost, 1)
	m.Outcome(metrics.RecoveryWaiting, 0)
	m.Round(at, true, nil)
	m.Round(at.Add(time.Minute), false, errors.New("db down"))
	g := reg.Gatherer()
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_reconciler_recoveries_total", "outcome", "recovered"))
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "failed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_rounds_total", "result", "ok"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_rounds_total", "result", "error"))
	require.Equal(t, 1.8e9, metricstest.Value(t, g, "scribeq_reconciler_last_round_timestamp_seconds"), "a failed round does not move it")
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_webhooks_unhealthy"))
}

// countingSource counts consumer info requests.
type countingSource struct {
	metrics.ConsumerSource
	n atomic.Int64
}

func (c *countingSource) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	c.n.Add(1)
	return c.ConsumerSource.Consumer(ctx, stream, name)
}

func TestConsumerBacklogIsReadAtScrapeAndCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := natstest.Queue(t, queue.Config{})
	// One message out at a time and a short AckWait: the second fetch can
	// only be the first message, delivered again.
	cons, err := q.JS.CreateOrUpdateConsumer(ctx, event.StreamJobs, jetstream.ConsumerConfig{
		Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxAckPending: 1,
	})
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		_, err := q.PublishJob(ctx, &event.Job{V: 1, JobID: id, Source: event.Source{URL: "https://x/" + id}, Options: event.Options{Model: "m"}})
		require.NoError(t, err)
	}
	for _, want := range []uint64{1, 2} {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range b.Messages() {
			md, err := m.Metadata()
			require.NoError(t, err)
			require.Equal(t, want, md.NumDelivered)
			n++
		}
		require.Equal(t, 1, n)
	}

	src := &countingSource{ConsumerSource: q.JS}
	reg := metrics.NewRegistry(metrics.WithCacheTTL(time.Hour))
	ref := metrics.ConsumerRef{Stream: event.StreamJobs, Consumer: "probe"}
	missing := metrics.ConsumerRef{Stream: event.StreamEvents, Consumer: queue.ConsumerSink}
	reg.WatchConsumers(src, ref, missing)
	g := reg.Gatherer()
	labels := []string{"stream", ref.Stream, "consumer", ref.Consumer}
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_consumer_info_up", labels...))
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_consumer_pending_messages", labels...))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_consumer_ack_pending_messages", labels...))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_consumer_redelivered_messages", labels...))
	missingLabels := []string{"stream", missing.Stream, "consumer", missing.Consumer}
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_consumer_info_up", missingLabels...))
	_, found := metricstest.Sum(t, g, "scribeq_consumer_pending_messages", missingLabels...)
	require.False(t, found, "no counts for a consumer that could not be read")

	// More jobs; the cached reading stands and NATS is not asked again.
	asked := src.n.Load()
	_, err = q.PublishJob(ctx, &event.Job{V: 1, JobID: "d", Source: event.Source{URL: "https://x/d"}, Options: event.Options{Model: "m"}})
	require.NoError(t, err)
	for range 5 {
		require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_consumer_pending_messages", labels...))
	}
	require.Equal(t, asked, src.n.Load(), "scrapes within the TTL are answered from the cache")

	fresh := metrics.NewRegistry(metrics.WithCacheTTL(0))
	fresh.WatchConsumers(q.JS, ref)
	require.Equal(t, 3.0, metricstest.Value(t, fresh.Gatherer(), "scribeq_consumer_pending_messages", labels...))
}

func TestSlotsAreReadAtScrapeAndCached(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	used := atomic.Int64{}
	used.Store(3)
	usage := func(context.Context) (int, int, error) {
		calls.Add(1)
		return int(used.Load()), 10, nil
	}
	reg := metrics.NewRegistry(metrics.WithCacheTTL(time.Hour))
	reg.Submitter().WatchSlots(usage)
	g := reg.Gatherer()
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_slots_in_use"))
	used.Store(5)
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_slots_in_use"))
	require.Equal(t, 10.0, metricstest.Value(t, g, "scribeq_slots_limit"))
	require.Equal(t, int64(1), calls.Load())

	uncached := metrics.NewRegistry(metrics.WithCacheTTL(0))
	uncached.Submitter().WatchSlots(usage)
	require.Equal(t, 5.0, metricstest.Value(t, uncached.Gatherer(), "scribeq_slots_in_use"))

	failing := metrics.NewRegistry()
	failing.Submitter().WatchSlots(func(context.Context) (int, int, error) { return 0, 0, errors.New("nats down") })
	_, found := metricstest.Sum(t, failing.Gatherer(), "scribeq_slots_in_use")
	require.False(t, found, "an unknown usage is left out, not reported as 0")
}

func TestWatchConsumersTwiceAddsNoDuplicates(t *testing.T) {
	t.Parallel()
	q := natstest.Queue(t, queue.Config{})
	_, err := q.SinkConsumer(context.Background())
	require.NoError(t, err)
	reg := metrics.NewRegistry()
	ref := metrics.ConsumerRef{Stream: event.StreamEvents, Consumer: queue.ConsumerSink}
	reg.WatchConsumers(q.JS, ref)
	reg.WatchConsumers(q.JS, ref)
	mfs, err := reg.Gatherer().Gather()
	require.NoError(t, err, "no duplicate series")
	i := slices.IndexFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "scribeq_consumer_info_up" })
	require.GreaterOrEqual(t, i, 0)
	require.Len(t, mfs[i].GetMetric(), 1)
}
