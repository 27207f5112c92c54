package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

type testBundle struct {
	q      *queue.Queue
	h      *ingress.Ingress
	srv    *httptest.Server
	url    string
	secret string
}

func setup(t *testing.T, cfg ingress.Config) *testBundle {
	t.Helper()
	q := natstest.Queue(t, queue.Config{ClaimCheckBytes: 4096})
	if cfg.Secrets == nil {
		cfg.Secrets = []string{"whsec_new", "whsec_old"}
	}
	h, err := ingress.New(q, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testBundle{q: q, h: h, srv: srv, url: srv.URL + "/webhooks/elevenlabs", secret: cfg.Secrets[0]}
}

func body(requestID, metadata string, text string) []byte {
	return []byte(`{"type":"speech_to_text_transcription","event_timestamp":1700000000,"data":{"request_id":"` + requestID +
		`","webhook_metadata":` + metadata + `,"transcription":{"language_code":"en","language_probability":0.99,"text":"` + text +
		`","words":[],"transcription_id":"tr_` + requestID + `"}}}`)
}

func post(t *testing.T, url string, b []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(elevenlabs.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func events(t *testing.T, q *queue.Queue) []*event.Event {
	t.Helper()
	ctx := context.Background()
	st, err := q.JS.Stream(ctx, event.StreamEvents)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []*event.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		ev, err := event.Decode(m.Data)
		require.NoError(t, err)
		full, err := q.Resolve(ctx, ev)
		require.NoError(t, err)
		out = append(out, full)
	}
	return out
}

func TestWebhookStored(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	for _, md := range []string{`{"job_id":"job-1"}`, `"{\"job_id\":\"job-1\"}"`} {
		payload := body("req-1", md, "hello world")
		require.Equal(t, http.StatusOK, post(t, b.url, payload, elevenlabs.Sign(b.secret, time.Now(), payload)))
	}
	evs := events(t, b.q)
	// Same request id twice: one event (Nats-Msg-Id dedupe).
	require.Len(t, evs, 1)
	ev := evs[0]
	require.Equal(t, event.TypeCompleted, ev.Type)
	require.Equal(t, "job-1", ev.JobID, "metadata as object or as string")
	require.Equal(t, "req-1", ev.RequestID)
	require.Equal(t, "tr_req-1", ev.TranscriptionID)
	var tr struct{ Text string }
	require.NoError(t, json.Unmarshal(ev.Transcription, &tr))
	require.Equal(t, "hello world", tr.Text)
}

func TestOldSecretStillAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	payload := body("req-2", `null`, "x")
	require.Equal(t, http.StatusOK, post(t, b.url, payload, elevenlabs.Sign("whsec_old", time.Now(), payload)))
	require.Len(t, events(t, b.q), 1)
}

func TestRejections(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{MaxBodyBytes: 8192})
	good := body("req-3", `{"job_id":"j"}`, "hi")
	now := time.Now()
	tests := []struct {
		name string
		body []byte
		sig  string
		want int
	}{
		{"MissingSignature", good, "", http.StatusUnauthorized},
		{"WrongSecret", good, elevenlabs.Sign("nope", now, good), http.StatusUnauthorized},
		{"TamperedBody", append([]byte(nil), bytes.Replace(good, []byte("hi"), []byte("ho"), 1)...), elevenlabs.Sign(b.secret, now, good), http.StatusUnauthorized},
		{"Stale", good, elevenlabs.Sign(b.secret, now.Add(-31*time.Minute), good), http.StatusUnauthorized},
		{"Future", good, elevenlabs.Sign(b.secret, now.Add(6*time.Minute), good), http.StatusUnauthorized},
		{"SignedGarbage", []byte(`{"type":`), elevenlabs.Sign(b.secret, now, []byte(`{"type":`)), http.StatusBadRequest},
		{"MissingRequestID", []byte(`{"type":"speech_to_text_transcription","data":{}}`), elevenlabs.Sign(b.secret, now, []byte(`{"type":"speech_to_text_transcription","data":{}}`)), http.StatusBadRequest},
		{"OtherTypeIgnored", []byte(`{"type":"post_call_transcription","data":{}}`), elevenlabs.Sign(b.secret, now, []byte(`{"type":"post_call_transcription","data":{}}`)), http.StatusOK},
		{"TooLarge", []byte(strings.Repeat("x", 9000)), "t=1,v0=00", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, post(t, b.url, tt.body, tt.sig))
		})
	}
	require.Empty(t, events(t, b.q), "nothing rejected may be published")
}

func TestLargeTranscriptByReference(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	text := strings.Repeat("lorem ipsum ", 5000)
	payload := body("req-big", `{"job_id":"j-big"}`, text)
	require.Equal(t, http.StatusOK, post(t, b.url, payload, elevenlabs.Sign(b.secret, time.Now(), payload)))

	ctx := context.Background()
	st, err := b.q.JS.Stream(ctx, event.StreamEvents)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctx, event.TypeCompleted.Subject())
	require.NoError(t, err)
	ref, err := event.Decode(m.Data)
	require.NoError(t, err)
	require.NotEmpty(t, ref.PayloadRef, "a large transcript travels by reference")
	full, err := b.q.Resolve(ctx, ref)
	require.NoError(t, err)
	var tr struct{ Text string }
	require.NoError(t, json.Unmarshal(full.Transcription, &tr))
	require.Equal(t, text, tr.Text)
}

func TestUnavailableWhenNATSIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{PublishTimeout: 500 * time.Millisecond})
	// Deleting the stream makes every publish fail like an outage would.
	_ = b.q.JS.DeleteStream(context.Background(), event.StreamEvents)
	payload := body("req-4", `{"job_id":"j"}`, "hi")
	require.Equal(t, http.StatusServiceUnavailable, post(t, b.url, payload, elevenlabs.Sign(b.secret, time.Now(), payload)))
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(b.srv.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
}

// A batch finishing at once sends many genuine webhooks from one address:
// none of them may be refused, however low the limit.
func TestGenuineBurstIsNotRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{RateLimit: 1, RateBurst: 2})
	for i := range 20 {
		payload := body("burst-"+string(rune('a'+i)), `{"job_id":"j"}`, "hi")
		require.Equal(t, http.StatusOK, post(t, b.url, payload, elevenlabs.Sign(b.secret, time.Now(), payload)), i)
	}
	require.Len(t, events(t, b.q), 20)
	// Unsigned requests from the same address still use the budget up.
	codes := map[int]int{}
	for range 5 {
		codes[post(t, b.url, []byte(`{}`), "")]++
	}
	require.Equal(t, map[int]int{http.StatusUnauthorized: 2, http.StatusTooManyRequests: 3}, codes)
}
