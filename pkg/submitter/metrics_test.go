package submitter_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/slots"
	"github.com/scribeq/scribeq/pkg/submitter"
)

// startWith runs a submitter whose Config may use the queue (for slots).
func startWith(t *testing.T, fn func(jobID string, n int) (*elevenlabs.ConvertResponse, error), cfg func(*queue.Queue) submitter.Config) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	q := natstest.Queue(t, queue.Config{})
	api := &fakeAPI{calls: map[string]int{}, bytes: map[string]int{}, fn: fn}
	sub, err := submitter.New(q, api, cfg(q))
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	return &testBundle{q: q, api: api, ctx: ctx}
}

// addPricedJob queues a job of secs seconds priced at perHour × mult USD.
func (b *testBundle) addPricedJob(t *testing.T, id string, secs, perHour, mult float64) {
	t.Helper()
	_, err := b.q.Audio.Put(b.ctx, jetstream.ObjectMeta{Name: "obj-" + id}, bytes.NewReader([]byte("RIFF")))
	require.NoError(t, err)
	_, err = b.q.PublishJob(b.ctx, &event.Job{
		V: 1, JobID: id, Source: event.Source{Object: "obj-" + id, Name: id + ".wav", Size: 4, DurationSecs: secs},
		Pricing: &event.Pricing{PerHour: perHour, Multiplier: mult, Currency: "USD"},
		Options: event.Options{Model: "scribe_v2"},
	})
	require.NoError(t, err)
}

func eventually(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, _ := metricstest.Sum(t, g, name, labels...)
		return v == want
	}, 10*time.Second, 10*time.Millisecond, "%s%q never reached %v", name, labels, want)
}

func TestMetricsFollowConvertCalls(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := startWith(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		switch {
		case jobID == "busy" && n == 1:
			return nil, &elevenlabs.APIError{Status: 503, Message: "busy", RetryAfter: 10 * time.Millisecond}
		case jobID == "bad":
			return nil, &elevenlabs.APIError{Status: 422, Type: "validation_error", Message: "bad keyterms"}
		}
		return ok(jobID, n)
	}, func(*queue.Queue) submitter.Config {
		return submitter.Config{Concurrency: 3, Metrics: reg.Submitter()}
	})
	// 45 minutes at 0.40 an hour with a 1.2 surcharge: 0.36.
	b.addPricedJob(t, "busy", 2700, 0.40, 1.2)
	b.addPricedJob(t, "bad", 600, 0.40, 1)
	b.waitEvent(t, event.TypeSubmitted, "busy")
	b.waitEvent(t, event.TypeFailed, "bad")

	g := reg.Gatherer()
	eventually(t, g, 1, "scribeq_job_transitions_total", "from", "queued", "to", "failed")
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "queued", "to", "submitted"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_errors_total", "status", "503", "kind", metrics.KindServerError))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_errors_total", "status", "422", "kind", metrics.KindRejected))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_duration_seconds", "outcome", metrics.ConvertAccepted))
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_submitter_convert_duration_seconds", "outcome", metrics.ConvertError))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_retries_total", "kind", metrics.RetryError))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_submitter_convert_in_flight"))
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_submitter_convert_concurrency"))
	require.Equal(t, 2700.0, metricstest.Value(t, g, "scribeq_submitter_accepted_audio_seconds_total"), "only accepted audio")
	require.InDelta(t, 0.36, metricstest.Value(t, g, "scribeq_estimated_cost_total", "currency", "USD"), 1e-9)
}

func TestMetricsCountARejectedKeyApart(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := startWith(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		if n == 1 {
			return nil, &elevenlabs.APIError{Status: 401, Code: "invalid_api_key", Message: "Invalid API key"}
		}
		return ok(jobID, n)
	}, func(*queue.Queue) submitter.Config {
		return submitter.Config{KeyPause: 20 * time.Millisecond, Metrics: reg.Submitter()}
	})
	b.addJob(t, "k1", []byte("RIFF"))
	b.waitEvent(t, event.TypeSubmitted, "k1")
	g := reg.Gatherer()
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_convert_errors_total", "status", "401", "kind", metrics.KindKeyRejected))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "queued", "to", "failed"),
		"a rejected key fails no job")
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_submitter_retries_total", "kind", metrics.RetryWait),
		"the wait for the key does not count against the job")
}

// While a call is in flight the shared slots and the process's own
// in-flight gauge both show it; afterwards neither does.
func TestMetricsShowSlotsInUse(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry(metrics.WithCacheTTL(0))
	release := make(chan struct{})
	b := startWith(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		<-release
		return nil, &elevenlabs.APIError{Status: 422, Message: "no"}
	}, func(q *queue.Queue) submitter.Config {
		return submitter.Config{Slots: slots.New(q.Slots, slots.Config{Max: 7}), Metrics: reg.Submitter()}
	})
	g := reg.Gatherer()
	require.Equal(t, 7.0, metricstest.Value(t, g, "scribeq_slots_limit"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_slots_in_use"))
	// 20 minutes of audio takes 3 slots.
	b.addPricedJob(t, "long", 1200, 0.40, 1)
	eventually(t, g, 1, "scribeq_submitter_convert_in_flight")
	require.Equal(t, 3.0, metricstest.Value(t, g, "scribeq_slots_in_use"))
	close(release)
	b.waitEvent(t, event.TypeFailed, "long")
	eventually(t, g, 0, "scribeq_slots_in_use")
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_submitter_convert_in_flight"))
	_, costed := metricstest.Sum(t, g, "scribeq_estimated_cost_total")
	require.False(t, costed, "a refused job costs nothing")
}
