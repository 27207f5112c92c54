package ingress_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/ingress"
)

// serve sends one request straight to the handler as if from remote.
func serve(h http.Handler, method, path, remote string, b []byte, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.RemoteAddr = remote
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRateLimitBeforeVerification(t *testing.T) {
	t.Parallel()
	// 0.01/s: no token comes back during the test.
	b := setup(t, ingress.Config{RateLimit: 0.01, RateBurst: 3})
	const path = "/webhooks/elevenlabs"
	flooder, other := "192.0.2.1:40000", "192.0.2.2:40000"

	var codes []int
	for range 10 {
		rec := serve(b.h, http.MethodPost, path, flooder, []byte(`{"forged":true}`), nil)
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests {
			require.Equal(t, "100", rec.Header().Get("Retry-After"))
		}
	}
	require.Equal(t, []int{401, 401, 401, 429, 429, 429, 429, 429, 429, 429}, codes)

	// Limited before the signature is looked at: a valid webhook from the
	// flooding address is refused too, and nothing is published.
	good := body("req-rl", `{"job_id":"j"}`, "hi")
	sig := http.Header{elevenlabs.SignatureHeader: {elevenlabs.Sign(b.secret, time.Now(), good)}}
	require.Equal(t, http.StatusTooManyRequests, serve(b.h, http.MethodPost, path, flooder, good, sig).Code)
	require.Empty(t, events(t, b.q))

	// Another client is unaffected; probes are never limited.
	require.Equal(t, http.StatusUnauthorized, serve(b.h, http.MethodPost, path, other, []byte(`{}`), nil).Code)
	require.Equal(t, http.StatusOK, serve(b.h, http.MethodPost, path, "192.0.2.3:1", good, sig).Code)
	for _, p := range []string{"/healthz", "/readyz"} {
		require.Equal(t, http.StatusOK, serve(b.h, http.MethodGet, p, flooder, nil, nil).Code, p)
	}
}

func TestRateLimitGroupsIPv6By64(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{RateLimit: 0.01, RateBurst: 1})
	const path = "/webhooks/elevenlabs"
	require.Equal(t, http.StatusUnauthorized, serve(b.h, http.MethodPost, path, "[2001:db8:1:2::1]:1", nil, nil).Code)
	require.Equal(t, http.StatusTooManyRequests, serve(b.h, http.MethodPost, path, "[2001:db8:1:2::ffff]:1", nil, nil).Code, "same /64")
	require.Equal(t, http.StatusUnauthorized, serve(b.h, http.MethodPost, path, "[2001:db8:1:3::1]:1", nil, nil).Code, "another /64")
}

func TestRateLimitBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{RateLimit: 0.01, RateBurst: 1, TrustedProxies: []string{"10.0.0.0/8", "192.0.2.9"}})
	const path = "/webhooks/elevenlabs"
	proxy := "10.1.2.3:5555"
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	tests := []struct {
		name   string
		remote string
		xff    string
		want   int
	}{
		{"FirstFromClientA", proxy, "198.51.100.7", http.StatusUnauthorized},
		{"ClientAAgain", proxy, "198.51.100.7", http.StatusTooManyRequests},
		{"ClientB", proxy, "198.51.100.8", http.StatusUnauthorized},
		// Whatever the client writes to the left is not trusted.
		{"ForgedLeftEntry", proxy, "203.0.113.1, 198.51.100.7", http.StatusTooManyRequests},
		// Two trusted hops: the client is the first untrusted from the right.
		{"ChainOfProxies", proxy, "198.51.100.7, 192.0.2.9", http.StatusTooManyRequests},
		// An untrusted peer cannot pick its bucket with the header.
		{"UntrustedPeer", "203.0.113.50:1", "198.51.100.99", http.StatusUnauthorized},
		{"UntrustedPeerAgain", "203.0.113.50:1", "198.51.100.100", http.StatusTooManyRequests},
	}
	for _, tt := range tests { // in order: each step depends on the ones before
		require.Equal(t, tt.want, serve(b.h, http.MethodPost, path, tt.remote, nil, xff(tt.xff)).Code, tt.name)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	_, err := ingress.New(b.q, ingress.Config{Secrets: []string{"s"}, RateLimit: -2})
	require.ErrorContains(t, err, "RateLimit")
	_, err = ingress.New(b.q, ingress.Config{Secrets: []string{"s"}, TrustedProxies: []string{"not-an-ip"}})
	require.ErrorContains(t, err, "TrustedProxies")
	h, err := ingress.New(b.q, ingress.Config{Secrets: []string{"s"}, RateLimit: -1})
	require.NoError(t, err, "-1 disables the limit")
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, serve(h, http.MethodPost, "/webhooks/elevenlabs", "192.0.2.1:1", nil, nil).Code)
	}
	require.NoError(t, h.Close())
}

func TestServerConfig(t *testing.T) {
	t.Parallel()
	def := ingress.NewServer(":0", http.NotFoundHandler())
	require.Equal(t, 10*time.Second, def.ReadHeaderTimeout)
	require.Equal(t, 5*time.Minute, def.ReadTimeout)
	require.Equal(t, 5*time.Minute, def.WriteTimeout)
	require.Equal(t, 2*time.Minute, def.IdleTimeout)
	require.Equal(t, 64<<10, def.MaxHeaderBytes)

	srv := ingress.ServerConfig{
		ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second,
		IdleTimeout: 4 * time.Second, MaxHeaderBytes: 1024,
	}.Server(":0", http.NotFoundHandler())
	require.Equal(t, time.Second, srv.ReadHeaderTimeout)
	require.Equal(t, 2*time.Second, srv.ReadTimeout)
	require.Equal(t, 3*time.Second, srv.WriteTimeout)
	require.Equal(t, 4*time.Second, srv.IdleTimeout)
	require.Equal(t, 1024, srv.MaxHeaderBytes)
}
