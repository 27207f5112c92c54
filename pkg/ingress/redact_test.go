package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Distinctive secrets: any 8 characters of them in a log line, an error or
// an answer is a leak.
const (
	canaryCurrent  = "whsec_Q7x2Lp9Vd4Hs3Kb8Zn1"
	canaryPrevious = "whsec_M3k8Rt6Wy1Gc5Jf2Xp9"
)

// Every way a webhook can fail, and every way the ingress can be
// misconfigured: neither webhook secret appears in the logs (JSON and
// text), in an error, or in what a sender is answered.
func TestWebhookSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	logs := logtest.New()
	var seen strings.Builder // errors and answers
	q := natstest.Queue(t, queue.Config{})
	cfg := ingress.Config{Secrets: []string{canaryCurrent, canaryPrevious}, MaxBodyBytes: 8192, Logger: logs.Logger(),
		SpoolDir: filepath.Join(t.TempDir(), "spool"), PublishTimeout: 300 * time.Millisecond}
	h, err := ingress.New(q, cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	url := srv.URL + "/webhooks/elevenlabs"

	send := func(b []byte, sig string) int {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		require.NoError(t, err)
		if sig != "" {
			req.Header.Set(elevenlabs.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		fmt.Fprintf(&seen, "%d %v %s\n", resp.StatusCode, resp.Header, answer)
		return resp.StatusCode
	}
	now := time.Now()
	good := body("req-leak", `{"job_id":"job-leak"}`, "fine")
	bad := []byte(`{"type":"speech_to_text_transcription","data":{}}`)
	steps := []struct {
		name string
		body []byte
		sig  string
		want int
	}{
		{"Stored", good, elevenlabs.Sign(canaryCurrent, now, good), http.StatusOK},
		{"PreviousSecret", good, elevenlabs.Sign(canaryPrevious, now, good), http.StatusOK},
		{"WrongSecret", good, elevenlabs.Sign("whsec_attacker", now, good), http.StatusUnauthorized},
		{"Stale", good, elevenlabs.Sign(canaryCurrent, now.Add(-2*time.Hour), good), http.StatusUnauthorized},
		{"Future", good, elevenlabs.Sign(canaryCurrent, now.Add(time.Hour), good), http.StatusUnauthorized},
		{"NoSignature", good, "", http.StatusUnauthorized},
		{"GarbageSignature", good, "t=abc,v0=zz", http.StatusUnauthorized},
		{"SignedMalformed", bad, elevenlabs.Sign(canaryCurrent, now, bad), http.StatusBadRequest},
		{"TooLarge", bytes.Repeat([]byte("x"), 9000), elevenlabs.Sign(canaryCurrent, now, nil), http.StatusRequestEntityTooLarge},
	}
	for _, s := range steps {
		require.Equal(t, s.want, send(s.body, s.sig), s.name)
	}

	// NATS refuses the event: it is spooled, and the replay keeps failing.
	require.NoError(t, q.JS.DeleteStream(context.Background(), event.StreamEvents))
	spooled := body("req-spool", `{"job_id":"job-spool"}`, "spooled")
	require.Equal(t, http.StatusOK, send(spooled, elevenlabs.Sign(canaryCurrent, time.Now(), spooled)))
	require.Eventually(t, func() bool { return logs.Has(t, "spool replay stopped; will retry") }, 10*time.Second, 10*time.Millisecond)
	srv.Close()
	require.NoError(t, h.Close())

	// Without a spool the sender is answered 503.
	noSpool := cfg
	noSpool.SpoolDir = ""
	h2, err := ingress.New(q, noSpool)
	require.NoError(t, err)
	srv = httptest.NewServer(h2)
	url = srv.URL + "/webhooks/elevenlabs"
	lost := body("req-503", `{"job_id":"job-503"}`, "lost")
	require.Equal(t, http.StatusServiceUnavailable, send(lost, elevenlabs.Sign(canaryCurrent, time.Now(), lost)))
	srv.Close()
	require.NoError(t, h2.Close())

	// The previous secret removed after a rotation: refused.
	rotated := cfg
	rotated.Secrets, rotated.SpoolDir = []string{canaryCurrent}, ""
	h3, err := ingress.New(q, rotated)
	require.NoError(t, err)
	srv = httptest.NewServer(h3)
	url = srv.URL + "/webhooks/elevenlabs"
	require.Equal(t, http.StatusUnauthorized, send(good, elevenlabs.Sign(canaryPrevious, time.Now(), good)))
	srv.Close()
	require.NoError(t, h3.Close())

	// Misconfigurations fail with errors that name the field, not its value.
	for _, bad := range []ingress.Config{
		{Secrets: []string{canaryCurrent, ""}},
		{Secrets: []string{canaryCurrent, canaryPrevious}, TrustedProxies: []string{"10.0.0.0/33"}},
		{Secrets: []string{canaryCurrent}, RateLimit: -5},
	} {
		_, err := ingress.New(q, bad)
		require.Error(t, err)
		fmt.Fprintln(&seen, err)
	}
	_, err = ingress.NewTLS(ingress.TLSConfig{CertFile: filepath.Join(t.TempDir(), "missing.pem"), KeyFile: "k"})
	require.Error(t, err)
	fmt.Fprintln(&seen, err)

	// Printing or logging the configuration shows how many secrets, not which.
	v := &elevenlabs.Verifier{Secrets: cfg.Secrets}
	fmt.Fprintf(&seen, "%v %+v %#v %s %v %+v %#v\n", cfg, cfg, cfg, &cfg, v, *v, v)
	logs.Logger().Info("config", "ingress", cfg, "ingress_ptr", &cfg, "verifier", v, "verifier_value", *v)
	require.Contains(t, seen.String(), "Secrets:2")
	require.True(t, logs.Has(t, "config"))

	require.True(t, logs.Has(t, "webhook rejected: signature"))
	require.True(t, logs.Has(t, "webhook stored", "job_id", "job-leak", "request_id", "req-leak", "transcription_id", "tr_req-leak"))
	require.True(t, logs.Has(t, "webhook not stored", "job_id", "job-503", "request_id", "req-503"))
	logtest.RequireAbsent(t, "ingress logs", logs.String(), canaryCurrent, canaryPrevious)
	logtest.RequireAbsent(t, "ingress errors and answers", seen.String(), canaryCurrent, canaryPrevious)
}
