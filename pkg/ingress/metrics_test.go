package ingress_test

import (
	"context"
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
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Each kind of delivery moves its own outcome, read from the ingress's own
// /metrics.
func TestMetricsCountWebhookOutcomes(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := setup(t, ingress.Config{MaxBodyBytes: 8192, Metrics: reg})
	good := body("req-m", `{"job_id":"j-m"}`, "hi")
	other := []byte(`{"type":"post_call_transcription","data":{}}`)
	now := time.Now()
	for _, tc := range []struct {
		body []byte
		sig  string
		want int
	}{
		{good, elevenlabs.Sign(b.secret, now, good), http.StatusOK},
		{good, elevenlabs.Sign("nope", now, good), http.StatusUnauthorized},
		{good, "t=1,v0=zz", http.StatusUnauthorized},
		{good, "", http.StatusUnauthorized},
		{good, elevenlabs.Sign(b.secret, now.Add(-31*time.Minute), good), http.StatusUnauthorized},
		{good, elevenlabs.Sign(b.secret, now.Add(6*time.Minute), good), http.StatusUnauthorized},
		{[]byte(`{"type":`), elevenlabs.Sign(b.secret, now, []byte(`{"type":`)), http.StatusBadRequest},
		{other, elevenlabs.Sign(b.secret, now, other), http.StatusOK},
		{[]byte(strings.Repeat("x", 9000)), "t=1,v0=00", http.StatusRequestEntityTooLarge},
	} {
		require.Equal(t, tc.want, post(t, b.url, tc.body, tc.sig))
	}

	g := metricstest.Scrape(t, b.srv.URL+"/metrics")
	for outcome, want := range map[string]float64{
		metrics.WebhookOK: 1, metrics.WebhookBadSignature: 2, metrics.WebhookMissingSignature: 1,
		metrics.WebhookStale: 1, metrics.WebhookFuture: 1, metrics.WebhookMalformed: 1,
		metrics.WebhookIgnored: 1, metrics.WebhookTooLarge: 1, metrics.WebhookSpooled: 0, metrics.WebhookUnavailable: 0,
	} {
		require.Equal(t, want, metricstest.Value(t, g, "scribeq_webhook_deliveries_total", "outcome", outcome), outcome)
	}
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_store_duration_seconds"))
}

// Scrapes are exempt from the rate limit, as probes are; refused requests
// are counted.
func TestMetricsEndpointIsNotRateLimited(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := setup(t, ingress.Config{RateLimit: 1, RateBurst: 1, Metrics: reg})
	require.Equal(t, http.StatusUnauthorized, post(t, b.url, []byte(`{}`), "t=1,v0=00"), "uses the budget up")
	require.Equal(t, http.StatusTooManyRequests, post(t, b.url, []byte(`{}`), "t=1,v0=00"))
	for range 10 {
		resp, err := http.Get(b.srv.URL + "/metrics")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	g := metricstest.Scrape(t, b.srv.URL+"/metrics")
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_deliveries_total", "outcome", metrics.WebhookRateLimited))
}

func TestNoMetricsEndpointWithoutRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	resp, err := http.Get(b.srv.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// A webhook spooled during an outage is counted as spooled when it
// arrives, and as a transition once, when it is published.
func TestMetricsFollowTheSpool(t *testing.T) {
	t.Parallel()
	ns := newRestartable(t)
	nc, err := queue.Connect(ns.s.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	reg := metrics.NewRegistry()
	h, err := ingress.New(q, ingress.Config{
		Secrets: []string{"whsec"}, SpoolDir: filepath.Join(t.TempDir(), "spool"), SpoolRetry: 20 * time.Millisecond,
		PublishTimeout: time.Second, Metrics: reg,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ns.stop()
	require.Eventually(t, func() bool { return !nc.IsConnected() }, 10*time.Second, 10*time.Millisecond)
	payload := body("req-sp", `{"job_id":"job-sp"}`, "hello")
	code, status := postStatus(t, srv.URL+"/webhooks/elevenlabs", payload, elevenlabs.Sign("whsec", time.Now(), payload))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "spooled", status)
	g := reg.Gatherer()
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_deliveries_total", "outcome", metrics.WebhookSpooled))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_webhook_spool_pending"))
	require.Positive(t, metricstest.Value(t, g, "scribeq_webhook_spool_bytes"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))

	ns.start()
	require.Eventually(t, func() bool {
		return metricstest.Value(t, g, "scribeq_webhook_spool_replayed_total") == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_webhook_spool_pending"))
	require.Equal(t, uint64(1), streamMsgs(t, q))
}

func TestMetricsCountUnavailable(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := setup(t, ingress.Config{PublishTimeout: 500 * time.Millisecond, Metrics: reg})
	_ = b.q.JS.DeleteStream(context.Background(), event.StreamEvents)
	payload := body("req-u", `{"job_id":"j"}`, "hi")
	require.Equal(t, http.StatusServiceUnavailable, post(t, b.url, payload, elevenlabs.Sign(b.secret, time.Now(), payload)))
	require.Equal(t, 1.0, metricstest.Value(t, reg.Gatherer(), "scribeq_webhook_deliveries_total", "outcome", metrics.WebhookUnavailable))
}
