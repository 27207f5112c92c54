package ingress_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// proxied serves an ingress over real HTTP on loopback, so every request's
// TCP peer is 127.0.0.1: a proxy when 127.0.0.1 is trusted.
func proxied(t *testing.T, trusted []string) (string, *logtest.Capture) {
	t.Helper()
	logs := logtest.New()
	q := natstest.Queue(t, queue.Config{})
	// 0.01/s: no token comes back during the test; burst 1: a client's
	// second unsigned request is refused.
	h, err := ingress.New(q, ingress.Config{
		Secrets: []string{"whsec_proxy"}, RateLimit: 0.01, RateBurst: 1, TrustedProxies: trusted, Logger: logs.Logger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/elevenlabs", logs
}

// postFrom sends an unsigned request with the given proxy headers
// (name, value pairs) and returns the status.
func postFrom(t *testing.T, url string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestClientFromTrustedProxyHeaders(t *testing.T) {
	t.Parallel()
	url, logs := proxied(t, []string{"127.0.0.0/8"})
	const xff, xri = "X-Forwarded-For", "X-Real-IP"
	steps := []struct {
		name    string
		headers []string
		want    int
	}{
		{"ClientA", []string{xff, "198.51.100.7"}, http.StatusUnauthorized},
		{"ClientAAgain", []string{xff, "198.51.100.7"}, http.StatusTooManyRequests},
		{"ClientB", []string{xff, "198.51.100.8"}, http.StatusUnauthorized},
		// What the client wrote before the proxy appended its peer is not believed.
		{"ForgedLeftEntry", []string{xff, "203.0.113.1, 198.51.100.7"}, http.StatusTooManyRequests},
		{"ForgedSecondHeader", []string{xff, "203.0.113.2", xff, "198.51.100.7"}, http.StatusTooManyRequests},
		// Proxies that write ports.
		{"HopWithPort", []string{xff, "198.51.100.10:5555"}, http.StatusUnauthorized},
		{"SameHopWithoutPort", []string{xff, "198.51.100.10"}, http.StatusTooManyRequests},
		{"IPv6HopWithPort", []string{xff, "[2001:db8:7::1]:443"}, http.StatusUnauthorized},
		{"SameIPv6Slash64", []string{xff, "2001:db8:7::2"}, http.StatusTooManyRequests},
		// nginx's X-Real-IP when there is no X-Forwarded-For.
		{"RealIP", []string{xri, "198.51.100.20"}, http.StatusUnauthorized},
		{"RealIPAgain", []string{xri, "198.51.100.20"}, http.StatusTooManyRequests},
		// X-Forwarded-For wins: X-Real-IP cannot pick another bucket.
		{"RealIPBesideForwardedFor", []string{xff, "198.51.100.8", xri, "198.51.100.99"}, http.StatusTooManyRequests},
		// A hop that is not an address ends the walk at the proxy itself.
		{"GarbageHop", []string{xff, "unknown"}, http.StatusUnauthorized},
		{"OtherGarbage", []string{xff, "198.51.100.30, _hidden"}, http.StatusTooManyRequests},
	}
	for _, s := range steps { // in order: each step depends on those before
		require.Equal(t, s.want, postFrom(t, url, s.headers...), s.name)
	}
	require.True(t, logs.Has(t, "webhook rejected: signature", "client", "198.51.100.8"),
		"logs name the client the proxy saw")
	for _, l := range logs.Lines(t) {
		if l["client"] == "198.51.100.8" {
			require.Regexp(t, `^127\.0\.0\.1:\d+$`, l["peer"], "and the proxy it came through")
		}
	}
}

func TestProxyHeadersFromUntrustedPeersIgnored(t *testing.T) {
	t.Parallel()
	// 10.0.0.0/8 is trusted, but the requests come from 127.0.0.1.
	for _, trusted := range [][]string{nil, {"10.0.0.0/8"}} {
		url, logs := proxied(t, trusted)
		require.Equal(t, http.StatusUnauthorized, postFrom(t, url, "X-Forwarded-For", "198.51.100.7"))
		// Another claimed client, a real IP, nothing at all: all the same
		// peer, whose one token is spent.
		require.Equal(t, http.StatusTooManyRequests, postFrom(t, url, "X-Forwarded-For", "198.51.100.8"))
		require.Equal(t, http.StatusTooManyRequests, postFrom(t, url, "X-Real-IP", "198.51.100.9"))
		require.Equal(t, http.StatusTooManyRequests, postFrom(t, url))
		lines := logs.Lines(t)
		require.NotEmpty(t, lines)
		for _, l := range lines {
			if l["msg"] == "webhook rejected: signature" {
				require.Equal(t, "127.0.0.1", l["client"], "a spoofed header never names the client in the logs")
				require.NotContains(t, l, "peer")
			}
		}
	}
}
