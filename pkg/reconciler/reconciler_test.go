package reconciler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/reconciler"
	"github.com/scribeq/scribeq/pkg/sink"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// bundle is one test's system: Postgres, NATS, and an emulator whose
// webhooks all go to a receiver that drops them.
type bundle struct {
	url   string
	st    *store.Store
	db    *query.DB
	q     *queue.Queue
	api   *elevenlabs.Client
	em    *emulator.Server
	drops *atomic.Int64
	now   time.Time
}

func setup(t *testing.T, qcfg queue.Config) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{url: pgtest.NewDB(t), drops: &atomic.Int64{}}
	var err error
	b.st, err = store.Open(ctx, b.url, nil)
	require.NoError(t, err)
	t.Cleanup(b.st.Close)
	b.db, err = query.Open(ctx, b.url)
	require.NoError(t, err)
	t.Cleanup(b.db.Close)

	b.q = natstest.Queue(t, qcfg)

	// The webhook endpoint is down: every delivery fails, and ElevenLabs
	// (like the emulator) never retries it.
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b.drops.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(drop.Close)
	b.em, err = emulator.New(emulator.Config{WebhookURL: drop.URL, WebhookSecret: "whsec_reconciler_test"})
	require.NoError(t, err)
	emu := httptest.NewServer(b.em.Handler())
	t.Cleanup(func() {
		emu.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.em.Close(ctx)
	})
	b.api, err = elevenlabs.New(elevenlabs.Config{BaseURL: emu.URL, APIKey: "sk_reconciler_test"})
	require.NoError(t, err)
	b.now = time.Now().UTC().Truncate(time.Second)
	return b
}

// convert sends a short WAV "saying" text to the emulator in webhook mode
// and waits until its webhook has been dropped, so the transcript is ready
// and only polling can find it.
func (b *bundle) convert(t *testing.T, jobID, text string) *elevenlabs.ConvertResponse {
	t.Helper()
	var wav bytes.Buffer
	samples := make([]int16, 8000)
	for i := range samples {
		samples[i] = int16(i % 1000)
	}
	require.NoError(t, audio.WriteWAV(&wav, 16000, samples, text))
	resp, err := b.api.Convert(context.Background(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(wav.Bytes()), FileName: jobID + ".wav", FileSize: int64(wav.Len()),
		Webhook: true, WebhookMetadata: map[string]string{"job_id": jobID},
	})
	require.NoError(t, err)
	require.NotEmpty(t, resp.TranscriptionID)
	waitFor(t, "webhook of "+jobID+" dropped", func() bool {
		for _, c := range b.em.Ledger() {
			if c.RequestID == resp.RequestID {
				return c.Delivery == "failed"
			}
		}
		return false
	})
	return resp
}

// submitted records, through the store as the sink would, a job that was
// queued and then submitted ago before b.now.
func (b *bundle) submitted(t *testing.T, jobID, requestID, transcriptionID string, ago time.Duration, durationSecs float64) {
	t.Helper()
	job := &event.Job{V: 1, JobID: jobID, Source: event.Source{Object: "sha-" + jobID, Path: "/audio/" + jobID + ".wav", DurationSecs: durationSecs},
		Options: event.Options{Model: "scribe_v2"}}
	require.NoError(t, b.st.Apply(context.Background(), []*event.Event{
		{V: 1, Type: event.TypeQueued, JobID: jobID, Job: job, At: b.now.Add(-ago - time.Minute), Process: "test"},
		{V: 1, Type: event.TypeSubmitted, JobID: jobID, RequestID: requestID, TranscriptionID: transcriptionID,
			ConvertCalls: 1, At: b.now.Add(-ago), Process: "test"},
	}))
}

func (b *bundle) reconciler(t *testing.T, api reconciler.TranscriptGetter, cfg reconciler.Config) *reconciler.Reconciler {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return b.now }
	}
	r, err := reconciler.New(b.db, b.q, api, cfg)
	require.NoError(t, err)
	return r
}

type stored struct {
	msgID string
	ev    *event.Event
}

// events reads every message on EVENTS, claim checks resolved while they
// are still held.
func (b *bundle) events(t *testing.T) []stored {
	t.Helper()
	ctx := context.Background()
	s, err := b.q.JS.Stream(ctx, event.StreamEvents)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []stored
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		ev, err := event.Decode(m.Data)
		require.NoError(t, err)
		if full, err := b.q.Resolve(ctx, ev); err == nil {
			ev = full
		} else {
			// The sink releases a claim check once it is stored.
			require.ErrorIs(t, err, queue.ErrPayloadMissing)
		}
		out = append(out, stored{msgID: m.Header.Get("Nats-Msg-Id"), ev: ev})
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}

func TestRound(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	ctx := context.Background()

	stuck := b.convert(t, "j-stuck", "the webhook for this one was dropped")
	young := b.convert(t, "j-young", "this one is still within its time")
	long := b.convert(t, "j-long", "a long recording is given longer")
	b.submitted(t, "j-stuck", stuck.RequestID, stuck.TranscriptionID, 20*time.Minute, 0.5)
	b.submitted(t, "j-young", young.RequestID, young.TranscriptionID, 5*time.Minute, 0.5)
	// An hour of audio: 3 × (0.3 × 3600 + 2) s ≈ 54 min before it is due.
	b.submitted(t, "j-long", long.RequestID, long.TranscriptionID, 40*time.Minute, 3600)
	b.submitted(t, "j-lost", "r-lost", "tr-unknown-lost", 3*time.Hour, 30)
	b.submitted(t, "j-notyet", "r-notyet", "tr-unknown-notyet", 30*time.Minute, 30)
	b.submitted(t, "j-noid", "r-noid", "", 30*time.Minute, 30)
	require.EqualValues(t, 3, b.drops.Load(), "every webhook went to the dead endpoint")

	var logs syncBuffer
	r := b.reconciler(t, b.api, reconciler.Config{
		UnhealthyRecovered: 1,
		Logger:             slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	res, err := r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, reconciler.Result{
		Stuck: 4, Recovered: 1, Lost: 1, Waiting: 1, MissingID: 1, WebhooksUnhealthy: true,
	}, res)

	evs := b.events(t)
	require.Len(t, evs, 2, "one completed and one failed event, nothing for the others")
	byType := map[event.Type]stored{}
	for _, s := range evs {
		byType[s.ev.Type] = s
	}

	c := byType[event.TypeCompleted]
	require.NotNil(t, c.ev)
	require.Equal(t, stuck.RequestID+":completed", c.msgID, "the ingress's message id, so a late webhook deduplicates")
	require.Equal(t, "j-stuck", c.ev.JobID)
	require.Equal(t, stuck.RequestID, c.ev.RequestID)
	require.Equal(t, stuck.TranscriptionID, c.ev.TranscriptionID)
	require.Equal(t, "reconciler", c.ev.Process)
	require.Equal(t, b.now, c.ev.At)
	tr, err := elevenlabs.ParseTranscript(c.ev.Transcription)
	require.NoError(t, err)
	require.Equal(t, "the webhook for this one was dropped", tr.Text)
	require.Equal(t, stuck.TranscriptionID, tr.TranscriptionID)

	f := byType[event.TypeFailed]
	require.NotNil(t, f.ev)
	require.Equal(t, "j-lost:failed", f.msgID)
	require.Equal(t, "j-lost", f.ev.JobID)
	require.Equal(t, "reconciler", f.ev.Process)
	require.Contains(t, f.ev.Error, "lost at ElevenLabs: transcript not found after 3h")
	require.Contains(t, f.ev.Error, "tr-unknown-lost")

	// The recovered job's slots are freed as its webhook would have freed them.
	kv, err := b.q.Webhooks.Get(ctx, "j-stuck")
	require.NoError(t, err)
	require.Equal(t, stuck.RequestID, string(kv.Value()))

	out := logs.String()
	require.Contains(t, out, `"level":"ERROR","msg":"webhooks are not arriving`)
	require.Contains(t, out, "linked to speech-to-text events")
	require.Regexp(t, `"level":"WARN","msg":"job stuck in submitted without a transcription_id[^\n]*"job_id":"j-noid","request_id":"r-noid"`, out)
	require.NotContains(t, out, "sk_reconciler_test", "the API key is never logged")
}

func TestRecoveredTranscriptReachesPostgresThroughTheSink(t *testing.T) {
	t.Parallel()
	// A tiny claim-check threshold sends the transcript through the object
	// store, as a large one would go.
	b := setup(t, queue.Config{ClaimCheckBytes: 256})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	resp := b.convert(t, "j-1", "recovered and stored")
	b.submitted(t, "j-1", resp.RequestID, resp.TranscriptionID, time.Hour, 0.5)
	s, err := sink.New(b.q, b.st, sink.Config{})
	require.NoError(t, err)
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- s.Run(ctx) }()

	r := b.reconciler(t, b.api, reconciler.Config{})
	res, err := r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Recovered)
	require.False(t, res.WebhooksUnhealthy, "one recovery is not yet a pattern")

	var job *query.Job
	waitFor(t, "job completed in Postgres", func() bool {
		job, err = b.db.Show(ctx, "j-1", false)
		require.NoError(t, err)
		return job.State == "completed"
	})
	require.NotNil(t, job.Transcript)
	require.Equal(t, "recovered and stored", job.Transcript.Text)
	require.Equal(t, resp.TranscriptionID, *job.TranscriptionID)
	last := job.History[len(job.History)-1]
	require.Equal(t, "completed", last.To)
	require.Equal(t, "reconciler", *last.Process)

	// A late webhook publishes the same message id: JetStream drops it.
	before := len(b.events(t))
	require.NoError(t, b.q.PublishEvent(ctx, &event.Event{
		Type: event.TypeCompleted, JobID: "j-1", RequestID: resp.RequestID, Process: "ingress",
		Transcription: json.RawMessage(`{"language_code":"en","language_probability":1,"text":"late","words":[]}`),
	}))
	require.Len(t, b.events(t), before, "the late webhook deduplicates against the recovery")

	// Once stored, the job is no longer stuck.
	b.now = b.now.Add(time.Hour)
	res, err = r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, reconciler.Result{}, res)

	cancel()
	require.NoError(t, <-sinkDone)
}

// countingGetter counts the GETs that reach the real client.
type countingGetter struct {
	api reconciler.TranscriptGetter
	n   atomic.Int64
}

func (c *countingGetter) GetTranscript(ctx context.Context, id string) (json.RawMessage, error) {
	c.n.Add(1)
	return c.api.GetTranscript(ctx, id)
}

func TestRecentlyRecoveredJobIsNotFetchedAgainUntilRecheck(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	ctx := context.Background()
	resp := b.convert(t, "j-1", "only once please")
	b.submitted(t, "j-1", resp.RequestID, resp.TranscriptionID, time.Hour, 0.5)
	get := &countingGetter{api: b.api}
	now := b.now
	r := b.reconciler(t, get, reconciler.Config{RecheckAfter: 10 * time.Minute, Now: func() time.Time { return now }})

	res, err := r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Recovered)
	require.EqualValues(t, 1, get.n.Load())

	// No sink runs: the job still looks stuck, but was just handled.
	now = now.Add(time.Minute)
	res, err = r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, reconciler.Result{Stuck: 1, Skipped: 1}, res)
	require.EqualValues(t, 1, get.n.Load())

	now = now.Add(10 * time.Minute)
	res, err = r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Recovered)
	require.EqualValues(t, 2, get.n.Load())
	require.Len(t, b.events(t), 1, "the repeat publish deduplicates")
}

// fakeGetter answers from a function and tracks concurrency.
type fakeGetter struct {
	answer   func(id string) (json.RawMessage, error)
	mu       sync.Mutex
	inFlight int
	peak     int
	calls    []string
	release  chan struct{} // when set, each call waits for it
}

func (f *fakeGetter) GetTranscript(ctx context.Context, id string) (json.RawMessage, error) {
	f.mu.Lock()
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	f.calls = append(f.calls, id)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.answer(id)
}

func notFound(string) (json.RawMessage, error) {
	return nil, &elevenlabs.APIError{Status: http.StatusNotFound, Code: "transcript_not_found"}
}

func TestRoundStopsWhenElevenLabsRefuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, queue.Config{})
			for _, id := range []string{"a", "b", "c"} {
				b.submitted(t, "j-"+id, "r-"+id, "t-"+id, time.Hour, 1)
			}
			get := &fakeGetter{answer: func(string) (json.RawMessage, error) {
				return nil, &elevenlabs.APIError{Status: status, Code: "refused"}
			}}
			r := b.reconciler(t, get, reconciler.Config{Concurrency: 1})
			res, err := r.Round(context.Background())
			require.NoError(t, err)
			require.Equal(t, reconciler.Result{Stuck: 3, Errors: 1, Skipped: 2}, res)
			require.Len(t, get.calls, 1, "no more calls once refused")
			require.Empty(t, b.events(t))
		})
	}
}

func TestRoundLimitsConcurrentFetches(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		b.submitted(t, "j-"+id, "r-"+id, "t-"+id, time.Hour, 1)
	}
	get := &fakeGetter{answer: notFound, release: make(chan struct{})}
	r := b.reconciler(t, get, reconciler.Config{Concurrency: 2})
	type roundResult struct {
		res reconciler.Result
		err error
	}
	done := make(chan roundResult, 1)
	go func() {
		res, err := r.Round(context.Background())
		done <- roundResult{res, err}
	}()
	waitFor(t, "two fetches in flight", func() bool {
		get.mu.Lock()
		defer get.mu.Unlock()
		return get.inFlight == 2
	})
	for range 6 {
		get.release <- struct{}{}
	}
	rr := <-done
	require.NoError(t, rr.err)
	res := rr.res
	require.Equal(t, reconciler.Result{Stuck: 6, Waiting: 6}, res, "404s an hour after submission are not lost yet")
	require.Equal(t, 2, get.peak)
}

func TestRoundsWorkThroughABacklogInTurn(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	for i, id := range []string{"a", "b", "c"} {
		b.submitted(t, "j-"+id, "r-"+id, "t-"+id, time.Hour-time.Duration(i)*time.Minute, 1)
	}
	get := &fakeGetter{answer: notFound}
	r := b.reconciler(t, get, reconciler.Config{BatchSize: 2, Concurrency: 1})
	for range 3 {
		_, err := r.Round(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, []string{"t-a", "t-b", "t-c", "t-a", "t-b"}, get.calls)
}

func TestRunUntilCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	resp := b.convert(t, "j-1", "found by the loop")
	b.submitted(t, "j-1", resp.RequestID, resp.TranscriptionID, time.Hour, 0.5)
	r := b.reconciler(t, b.api, reconciler.Config{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "the completed event", func() bool { return len(b.events(t)) == 1 })
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRoundCanceledBeforeItStarts(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	r := b.reconciler(t, b.api, reconciler.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Round(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
