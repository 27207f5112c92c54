package submitter_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/submitter"
)

// canaryKey is the API key the submitter sends; canaryWebhookSecret signs
// the emulator's webhooks. Any 8 characters of either in a log line, an
// error or a published event is a leak.
const (
	canaryKey           = "sk_5Tq9Wm2Zr8HxVb3Ny6Lc4"
	canaryWebhookSecret = "whsec_B6n3Jd7KfPw2Rs9Tg5"
)

func testWAV(t *testing.T) []byte {
	t.Helper()
	samples := make([]int16, 8000)
	for i := range samples {
		samples[i] = int16(i % 1000)
	}
	var buf bytes.Buffer
	require.NoError(t, audio.WriteWAV(&buf, 16000, samples, "redaction test"))
	return buf.Bytes()
}

// startEmulator runs an emulator that accepts only acceptKeys and signs
// webhooks (sent to a receiver that takes them) with the canary secret.
func startEmulator(t *testing.T, logs *logtest.Capture, faults emulator.Faults, acceptKeys ...string) string {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(hook.Close)
	em, err := emulator.New(emulator.Config{
		APIKeys: acceptKeys, WebhookURL: hook.URL, WebhookSecret: canaryWebhookSecret, Faults: faults, Logger: logs.Logger(),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = em.Close(ctx)
	})
	return srv.URL
}

// echoServer answers every call with status and a body and headers that
// repeat the key it was sent, as a broken proxy might.
func echoServer(t *testing.T, status int, jsonBody bool) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get("xi-api-key")
		w.Header().Set("request-id", "req-"+key)
		w.Header().Set("retry-after-ms", "10")
		w.WriteHeader(status)
		if jsonBody {
			fmt.Fprintf(w, `{"detail":{"type":"internal_error","code":"%s","message":"upstream rejected key %s","param":"%s","request_id":"r-%s"}}`, key, key, key, key)
			return
		}
		fmt.Fprintf(w, "<html><body>502 bad gateway: header xi-api-key=%s</body></html>", key)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return url
}

// Whatever fails between the submitter and ElevenLabs, the API key and the
// webhook secret appear in no log line (JSON or text, the emulator's
// included), no error and no published event.
func TestAPIKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// base returns the API's base URL; logs also receive the emulator's.
		base func(t *testing.T, logs *logtest.Capture) string
		// until is the log message that shows the failure was handled.
		until string
		// echo: the answer repeated the key, which must be masked.
		echo bool
	}{
		{"KeyRejected", func(t *testing.T, logs *logtest.Capture) string {
			return startEmulator(t, logs, emulator.Faults{}, "sk_the_only_accepted_key")
		}, "ElevenLabs rejected the API key: fix ELEVENLABS_API_KEY. Submitting is paused; jobs stay queued", false},
		{"ServerError", func(t *testing.T, logs *logtest.Capture) string {
			return startEmulator(t, logs, emulator.Faults{Status: map[int]float64{500: 1}})
		}, "job failed", false},
		{"Unavailable", func(t *testing.T, logs *logtest.Capture) string {
			return startEmulator(t, logs, emulator.Faults{Status: map[int]float64{503: 1}, RetryAfter: 10 * time.Millisecond})
		}, "convert call refused for now", false},
		{"ResetAfterAccept", func(t *testing.T, logs *logtest.Capture) string {
			return startEmulator(t, logs, emulator.Faults{ResetAfterAccept: 1})
		}, "convert call failed", false},
		{"ErrorBodyEchoesKey", func(t *testing.T, _ *logtest.Capture) string { return echoServer(t, 500, true) }, "job failed", true},
		{"ProxyPageEchoesKey", func(t *testing.T, _ *logtest.Capture) string { return echoServer(t, 401, false) },
			"ElevenLabs rejected the API key: fix ELEVENLABS_API_KEY. Submitting is paused; jobs stay queued", true},
		{"ConnectionRefused", func(t *testing.T, _ *logtest.Capture) string { return closedURL(t) }, "job failed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := logtest.New()
			var errs strings.Builder
			base := tt.base(t, logs)
			api, err := elevenlabs.New(elevenlabs.Config{BaseURL: base, APIKey: canaryKey})
			require.NoError(t, err)
			fmt.Fprintf(&errs, "%v %+v %#v %s\n", api, api, api, api)

			// The client alone: the error a caller would print.
			audio := testWAV(t)
			_, err = api.Convert(context.Background(), &elevenlabs.ConvertRequest{
				ModelID: "scribe_v2", File: bytes.NewReader(audio), FileSize: int64(len(audio)), FileName: "a.wav",
				Webhook: true, WebhookMetadata: map[string]string{"job_id": "direct"},
			})
			require.Error(t, err)
			fmt.Fprintf(&errs, "%v\n%+v\n%#v\n", err, err, err)
			_, err = api.GetTranscript(context.Background(), "tr_unknown")
			require.Error(t, err)
			fmt.Fprintf(&errs, "%v\n%+v\n", err, err)

			// The submitter, which logs and publishes what went wrong.
			b := &testBundle{q: natstest.Queue(t, queue.Config{}), ctx: context.Background()}
			sub, err := submitter.New(b.q, api, submitter.Config{MaxAttempts: 1, KeyPause: 10 * time.Millisecond, Logger: logs.Logger()})
			require.NoError(t, err)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sub.Run(ctx) }()
			b.addJob(t, "job-"+tt.name, audio)
			require.Eventually(t, func() bool { return logs.Has(t, tt.until, "job_id", "job-"+tt.name) },
				20*time.Second, 10*time.Millisecond, "the failure was never handled")
			stop()
			require.NoError(t, <-done)

			if tt.echo {
				require.Contains(t, errs.String(), "[redacted]", "the echoed key is masked where it stood")
			}
			if tt.until == "job failed" {
				ev := b.waitEvent(t, event.TypeFailed, "job-"+tt.name)
				require.NotEmpty(t, ev.Error)
				if tt.echo {
					require.Contains(t, ev.Error, "[redacted]")
				}
			}
			events := streamText(t, b.q)
			logtest.RequireAbsent(t, "logs", logs.String(), canaryKey, canaryWebhookSecret)
			logtest.RequireAbsent(t, "errors", errs.String(), canaryKey, canaryWebhookSecret)
			logtest.RequireAbsent(t, "published events", events, canaryKey, canaryWebhookSecret)
		})
	}
}

// Every line the submitter logs about a job names it, and once ElevenLabs
// has accepted the job, its request and transcription ids too.
func TestJobLogLinesCarryIDs(t *testing.T) {
	t.Parallel()
	logs := logtest.New()
	api, err := elevenlabs.New(elevenlabs.Config{BaseURL: startEmulator(t, logtest.New(), emulator.Faults{}), APIKey: canaryKey})
	require.NoError(t, err)
	b := &testBundle{q: natstest.Queue(t, queue.Config{}), ctx: context.Background()}
	sub, err := submitter.New(b.q, api, submitter.Config{Logger: logs.Logger()})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	b.addJob(t, "job-ids", testWAV(t))
	ev := b.waitEvent(t, event.TypeSubmitted, "job-ids")
	require.NotEmpty(t, ev.RequestID)
	require.True(t, logs.Has(t, "job sent", "job_id", "job-ids", "request_id", ev.RequestID, "transcription_id", ev.TranscriptionID))

	// A redelivered job that an earlier worker had sent: only announced,
	// under the ids that worker recorded.
	_, err = b.q.Submissions.Create(b.ctx, "job-resent", []byte(`{"attempt_id":"old","calls":1,"request_id":"req-earlier","transcription_id":"tr-earlier"}`))
	require.NoError(t, err)
	b.addJob(t, "job-resent", testWAV(t))
	b.waitEvent(t, event.TypeSubmitted, "job-resent")
	require.True(t, logs.Has(t, "job already sent; not sending again",
		"job_id", "job-resent", "request_id", "req-earlier", "transcription_id", "tr-earlier"))

	jobLines := 0
	for _, l := range logs.Lines(t) {
		if l["job_id"] == nil {
			continue
		}
		jobLines++
		require.Contains(t, []any{"job-ids", "job-resent"}, l["job_id"], "%v", l)
		require.NotEmpty(t, l["request_id"], "every line after the job was accepted names its request: %v", l)
	}
	require.Positive(t, jobLines)
}

// streamText is every message on EVENTS, as text.
func streamText(t *testing.T, q *queue.Queue) string {
	t.Helper()
	ctx := context.Background()
	st, err := q.JS.Stream(ctx, event.StreamEvents)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out strings.Builder
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		fmt.Fprintf(&out, "%v %s\n", m.Header, m.Data)
	}
	return out.String()
}
