package submitter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/submitter"
)

// fakeAPI stands in for ElevenLabs where the test needs a specific answer;
// the end-to-end tests use the emulator.
type fakeAPI struct {
	mu    sync.Mutex
	calls map[string]int // job_id -> calls
	bytes map[string]int // job_id -> audio bytes received
	fn    func(jobID string, n int) (*elevenlabs.ConvertResponse, error)
}

func (f *fakeAPI) Convert(_ context.Context, req *elevenlabs.ConvertRequest) (*elevenlabs.ConvertResponse, error) {
	md := req.WebhookMetadata.(map[string]string)
	jobID := md["job_id"]
	n := 0
	if req.File != nil {
		b, err := io.ReadAll(req.File)
		if err != nil {
			return nil, err
		}
		n = len(b)
	}
	f.mu.Lock()
	f.calls[jobID]++
	f.bytes[jobID] = n
	c := f.calls[jobID]
	f.mu.Unlock()
	return f.fn(jobID, c)
}

func (f *fakeAPI) count(jobID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[jobID]
}

type testBundle struct {
	q   *queue.Queue
	api *fakeAPI
	ctx context.Context
}

func setup(t *testing.T, fn func(jobID string, n int) (*elevenlabs.ConvertResponse, error), cfg submitter.Config) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	q := natstest.Queue(t, queue.Config{})
	api := &fakeAPI{calls: map[string]int{}, bytes: map[string]int{}, fn: fn}
	sub, err := submitter.New(q, api, cfg)
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

func (b *testBundle) addJob(t *testing.T, id string, audio []byte) {
	t.Helper()
	_, err := b.q.Audio.Put(b.ctx, jetstream.ObjectMeta{Name: "obj-" + id}, bytes.NewReader(audio))
	require.NoError(t, err)
	_, err = b.q.PublishJob(b.ctx, &event.Job{
		V: 1, JobID: id, Source: event.Source{Object: "obj-" + id, Name: id + ".wav", Size: int64(len(audio))},
		Options: event.Options{Model: "scribe_v2"},
	})
	require.NoError(t, err)
}

// waitEvent returns the first event of type typ for job id.
func (b *testBundle) waitEvent(t *testing.T, typ event.Type, id string) *event.Event {
	t.Helper()
	st, err := b.q.JS.Stream(b.ctx, event.StreamEvents)
	require.NoError(t, err)
	for {
		m, err := st.GetLastMsgForSubject(b.ctx, typ.Subject())
		if err == nil {
			ev, err := event.Decode(m.Data)
			require.NoError(t, err)
			if ev.JobID == id {
				return ev
			}
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("no %s event for %s: %v", typ, id, b.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ok(jobID string, _ int) (*elevenlabs.ConvertResponse, error) {
	return &elevenlabs.ConvertResponse{RequestID: "req-" + jobID, TranscriptionID: "tr-" + jobID}, nil
}

func TestSendsOnceAndRecordsRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t, ok, submitter.Config{})
	b.addJob(t, "j1", []byte("RIFF-some-audio"))
	ev := b.waitEvent(t, event.TypeSubmitted, "j1")
	require.Equal(t, "req-j1", ev.RequestID)
	require.Equal(t, "tr-j1", ev.TranscriptionID)
	require.Equal(t, 1, b.api.count("j1"))
	require.Equal(t, len("RIFF-some-audio"), b.api.bytes["j1"], "the audio is streamed from the object store")

	entry, err := b.q.Submissions.Get(b.ctx, "j1")
	require.NoError(t, err)
	var rec struct {
		RequestID string `json:"request_id"`
	}
	require.NoError(t, json.Unmarshal(entry.Value(), &rec))
	require.Equal(t, "req-j1", rec.RequestID)
}

func TestRedeliveredJobIsNotSentAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, ok, submitter.Config{})
	// A previous worker sent this job and recorded the request id, but died
	// before acknowledging the message.
	_, err := b.q.Submissions.Create(b.ctx, "j2", []byte(`{"attempt_id":"old","calls":1,"request_id":"req-earlier","transcription_id":"tr-earlier"}`))
	require.NoError(t, err)
	b.addJob(t, "j2", []byte("audio"))
	ev := b.waitEvent(t, event.TypeSubmitted, "j2")
	require.Equal(t, "req-earlier", ev.RequestID)
	require.Zero(t, b.api.count("j2"), "billed once: no second convert call")
}

func TestClientErrorFailsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, func(string, int) (*elevenlabs.ConvertResponse, error) {
		return nil, &elevenlabs.APIError{Status: 422, Type: "validation_error", Code: "invalid_parameters", Message: "bad keyterms"}
	}, submitter.Config{})
	b.addJob(t, "j3", []byte("audio"))
	ev := b.waitEvent(t, event.TypeFailed, "j3")
	require.Contains(t, ev.Error, "bad keyterms")
	require.Equal(t, 1, b.api.count("j3"), "a 4xx is not retried")
}

func TestTransientErrorsRetryThenSucceed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		if n < 3 {
			return nil, &elevenlabs.APIError{Status: 503, Message: "busy", RetryAfter: 10 * time.Millisecond}
		}
		return ok(jobID, n)
	}, submitter.Config{})
	b.addJob(t, "j4", []byte("audio"))
	ev := b.waitEvent(t, event.TypeSubmitted, "j4")
	require.Equal(t, "req-j4", ev.RequestID)
	require.Equal(t, 3, b.api.count("j4"))
}

func TestTransientErrorsFailAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t, func(string, int) (*elevenlabs.ConvertResponse, error) {
		return nil, &elevenlabs.APIError{Status: 500, Message: "internal", RetryAfter: 10 * time.Millisecond}
	}, submitter.Config{MaxAttempts: 3})
	b.addJob(t, "j5", []byte("audio"))
	ev := b.waitEvent(t, event.TypeFailed, "j5")
	require.Contains(t, ev.Error, "internal")
	require.Equal(t, 3, b.api.count("j5"))
}

func TestMissingAudioFailsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, ok, submitter.Config{})
	_, err := b.q.PublishJob(b.ctx, &event.Job{
		V: 1, JobID: "j6", Source: event.Source{Object: "nope"}, Options: event.Options{Model: "scribe_v2"},
	})
	require.NoError(t, err)
	ev := b.waitEvent(t, event.TypeFailed, "j6")
	require.Contains(t, ev.Error, "missing")
	require.Zero(t, b.api.count("j6"))
}

// A worker died after starting a convert call: the claim is pending and its
// lease expired. The webhook for that call was stored, so the job is
// recorded as sent without a second call.
func TestInDoubtCallAdoptsItsWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, ok, submitter.Config{InDoubtGrace: time.Hour})
	_, err := b.q.Submissions.Create(b.ctx, "j7", []byte(`{"attempt_id":"dead","calls":1,"pending":true,"lease_until":"2020-01-01T00:00:00Z"}`))
	require.NoError(t, err)
	_, err = b.q.Webhooks.Put(b.ctx, "j7", []byte("req-from-webhook"))
	require.NoError(t, err)
	b.addJob(t, "j7", []byte("audio"))
	ev := b.waitEvent(t, event.TypeSubmitted, "j7")
	require.Equal(t, "req-from-webhook", ev.RequestID)
	require.Equal(t, 1, ev.ConvertCalls)
	require.Zero(t, b.api.count("j7"))
}

// Without a webhook, the job waits out the grace window, then is sent
// again and the second call is counted.
func TestInDoubtCallIsRepeatedAfterGrace(t *testing.T) {
	t.Parallel()
	b := setup(t, ok, submitter.Config{InDoubtGrace: 300 * time.Millisecond})
	lease := time.Now().UTC().Add(-100 * time.Millisecond).Format(time.RFC3339Nano)
	_, err := b.q.Submissions.Create(b.ctx, "j8", []byte(`{"attempt_id":"dead","calls":1,"pending":true,"lease_until":"`+lease+`"}`))
	require.NoError(t, err)
	b.addJob(t, "j8", []byte("audio"))
	ev := b.waitEvent(t, event.TypeSubmitted, "j8")
	require.Equal(t, "req-j8", ev.RequestID)
	require.Equal(t, 2, ev.ConvertCalls, "the repeated call is visible")
	require.Equal(t, 1, b.api.count("j8"))
}

// A call whose answer is lost (connection reset after sending) leaves the
// claim pending: the job is not sent again before the grace window.
func TestLostAnswerIsNotRetriedBlindly(t *testing.T) {
	t.Parallel()
	b := setup(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		if n == 1 {
			return nil, io.ErrUnexpectedEOF // sent, answer lost
		}
		return ok(jobID, n)
	}, submitter.Config{InDoubtGrace: time.Hour})
	b.addJob(t, "j9", []byte("audio"))
	// Wait until the claim records the lost answer.
	for {
		e, err := b.q.Submissions.Get(b.ctx, "j9")
		if err == nil && b.api.count("j9") == 1 {
			var c struct {
				Pending bool `json:"pending"`
			}
			require.NoError(t, json.Unmarshal(e.Value(), &c))
			if c.Pending {
				break
			}
		}
		select {
		case <-b.ctx.Done():
			t.Fatal("claim never marked pending")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The webhook of the lost call arrives: the job adopts it, no second call.
	_, err := b.q.Webhooks.Put(b.ctx, "j9", []byte("req-lost-answer"))
	require.NoError(t, err)
	ev := b.waitEvent(t, event.TypeSubmitted, "j9")
	require.Equal(t, "req-lost-answer", ev.RequestID)
	require.Equal(t, 1, b.api.count("j9"))
}

// A rejected key pauses all calls: no job fails, at most one call at a time
// probes the key while it is wrong, and the queue drains once it is fixed.
func TestRejectedKeyPausesSubmitting(t *testing.T) {
	t.Parallel()
	var (
		mu                    sync.Mutex
		keyOK, rejected       bool
		inFlight, maxInFlight int
	)
	b := setup(t, func(jobID string, n int) (*elevenlabs.ConvertResponse, error) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		good := keyOK
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			rejected = rejected || !good
			mu.Unlock()
		}()
		if good {
			return ok(jobID, n)
		}
		time.Sleep(5 * time.Millisecond) // ElevenLabs' latency, so overlapping calls would show
		return nil, &elevenlabs.APIError{Status: 401, Code: "invalid_api_key", Message: "Invalid API key"}
	}, submitter.Config{Concurrency: 4, KeyPause: 20 * time.Millisecond})
	calls := func() int {
		b.api.mu.Lock()
		defer b.api.mu.Unlock()
		n := 0
		for _, c := range b.api.calls {
			n += c
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-b.ctx.Done():
				t.Fatal(what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	// One job meets the wrong key first; the rest arrive while it is known
	// to be wrong, with four workers free to send them at once.
	b.addJob(t, "k0", []byte("audio"))
	waitFor("the key was never tried", func() bool { mu.Lock(); defer mu.Unlock(); return rejected })
	ids := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	for _, id := range ids[1:] {
		b.addJob(t, id, []byte("audio"))
	}
	// Probes after pauses of 20, 40, 80, 160 ms…
	waitFor("the key was never probed again", func() bool { return calls() >= 6 })
	mu.Lock()
	most := maxInFlight
	keyOK = true
	mu.Unlock()
	require.Equal(t, 1, most, "while the key is wrong, one call at a time probes it")
	for _, id := range ids {
		waitFor("job "+id+" never sent", func() bool {
			e, err := b.q.Submissions.Get(b.ctx, id)
			return err == nil && bytes.Contains(e.Value(), []byte(`"request_id":"req-`+id+`"`))
		})
	}
	st, err := b.q.JS.Stream(b.ctx, event.StreamEvents)
	require.NoError(t, err)
	_, err = st.GetLastMsgForSubject(b.ctx, event.TypeFailed.Subject())
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "a wrong key fails no job")
}
