package ingress_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/logtest"
)

// testCert is a self-signed certificate for names (DNS names, or IPs).
type testCert struct {
	certPEM, keyPEM []byte
	x509            *x509.Certificate
}

func newCert(t *testing.T, serial int64, names ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "scribeq test " + names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	parsed, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		x509:    parsed,
	}
}

// writeFile replaces path and moves its modification time forward, so a
// rewrite within the file system's timestamp granularity still shows.
func writeFile(t *testing.T, path string, data []byte, at time.Time) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
	require.NoError(t, os.Chtimes(path, at, at))
}

// serveTLS serves h with cfg on a real loopback listener, the server's own
// errors going to log; it returns the address.
func serveTLS(t *testing.T, h http.Handler, cfg *tls.Config, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := ingress.ServerConfig{Logger: log}.Server("", h)
	srv.TLSConfig = cfg
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// tlsClient trusts roots, asks for serverName, and opens a new connection
// for every request, so each request sees the certificate served now.
func tlsClient(serverName string, roots ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
		DisableKeepAlives: true,
	}}
}

// postTLS sends a webhook and returns the status and the serial of the
// certificate the server showed.
func postTLS(t *testing.T, c *http.Client, url string, b []byte, sig string) (int, int64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set(elevenlabs.SignatureHeader, sig)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSFromFilesReloadsOnChange(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first, second, third := newCert(t, 1, "127.0.0.1"), newCert(t, 2, "127.0.0.1"), newCert(t, 3, "127.0.0.1")
	at := time.Now().Add(-time.Hour)
	writeFile(t, certFile, first.certPEM, at)
	writeFile(t, keyFile, first.keyPEM, at)

	logs := logtest.New()
	setupTLS, err := ingress.NewTLS(ingress.TLSConfig{CertFile: certFile, KeyFile: keyFile, Logger: logs.Logger()})
	require.NoError(t, err)
	require.Nil(t, setupTLS.ACMEHandler, "no ACME with certificate files")
	require.Equal(t, uint16(tls.VersionTLS12), setupTLS.Config.MinVersion)
	addr := serveTLS(t, b.h, setupTLS.Config, logs.Logger())
	url := "https://" + addr + "/webhooks/elevenlabs"
	client := tlsClient("127.0.0.1", first.x509, second.x509, third.x509)

	send := func(id string) (int, int64) {
		payload := body(id, `{"job_id":"`+id+`"}`, "over tls")
		return postTLS(t, client, url, payload, elevenlabs.Sign(b.secret, time.Now(), payload))
	}
	code, serial := send("tls-1")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 1, serial)

	// A renewal: both files replaced. The next handshake serves the new pair.
	writeFile(t, certFile, second.certPEM, at.Add(time.Minute))
	writeFile(t, keyFile, second.keyPEM, at.Add(time.Minute))
	code, serial = send("tls-2")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, serial, "renewed certificate served without a restart")
	require.True(t, logs.Has(t, "TLS certificate reloaded"))

	// Caught halfway: the new certificate is there, its key not yet. The
	// previous pair stays in service.
	writeFile(t, certFile, third.certPEM, at.Add(2*time.Minute))
	code, serial = send("tls-3")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, serial, "a pair that does not match is not served")
	require.True(t, logs.Has(t, "TLS certificate files changed but do not load; still serving the previous certificate"))
	writeFile(t, keyFile, third.keyPEM, at.Add(2*time.Minute))
	code, serial = send("tls-4")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 3, serial)

	require.Len(t, events(t, b.q), 4, "every webhook over TLS was stored")

	// Plain HTTP to the TLS port is refused, not served.
	resp, err := http.Post("http://"+addr+"/webhooks/elevenlabs", "application/json", bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, other := newCert(t, 1, "127.0.0.1"), newCert(t, 2, "127.0.0.1")
	certFile, keyFile, otherKey := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "other.pem")
	require.NoError(t, os.WriteFile(certFile, good.certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, good.keyPEM, 0o600))
	require.NoError(t, os.WriteFile(otherKey, other.keyPEM, 0o600))

	off, err := ingress.NewTLS(ingress.TLSConfig{})
	require.NoError(t, err)
	require.Nil(t, off, "no TLS configured: plain HTTP")

	tests := []struct {
		name string
		cfg  ingress.TLSConfig
		want string
	}{
		{"CertWithoutKey", ingress.TLSConfig{CertFile: certFile}, "key file"},
		{"KeyWithoutCert", ingress.TLSConfig{KeyFile: keyFile}, "key file"},
		{"FilesAndDomain", ingress.TLSConfig{CertFile: certFile, KeyFile: keyFile, Domains: []string{"a.example.org"}, CacheDir: dir}, "exclude each other"},
		{"DomainWithoutCache", ingress.TLSConfig{Domains: []string{"a.example.org"}}, "cache directory"},
		{"DomainWithScheme", ingress.TLSConfig{Domains: []string{"https://a.example.org"}, CacheDir: dir}, "not a domain name"},
		{"Wildcard", ingress.TLSConfig{Domains: []string{"*.example.org"}, CacheDir: dir}, "not a domain name"},
		{"DomainWithPort", ingress.TLSConfig{Domains: []string{"a.example.org:443"}, CacheDir: dir}, "not a domain name"},
		{"MissingCert", ingress.TLSConfig{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: keyFile}, "nope.pem"},
		{"MismatchedKey", ingress.TLSConfig{CertFile: certFile, KeyFile: otherKey}, "private key does not match"},
		{"NotPEM", ingress.TLSConfig{CertFile: keyFile, KeyFile: keyFile}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ingress.NewTLS(tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// autocertDomain is the only name the ACME tests allow.
const autocertDomain = "webhooks.example.org"

// acmeSetup builds automatic certificates for autocertDomain with a cache
// that already holds a certificate for it, as after an earlier run. The
// directory URL is a closed local port, so nothing here can reach a CA.
func acmeSetup(t *testing.T, log *slog.Logger, domains ...string) (*ingress.TLS, testCert) {
	t.Helper()
	cache := t.TempDir()
	cert := newCert(t, 42, autocertDomain)
	// autocert's cache entry: the key, then the chain, under the domain name.
	require.NoError(t, os.WriteFile(filepath.Join(cache, autocertDomain), append(cert.keyPEM, cert.certPEM...), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/directory"
	require.NoError(t, ln.Close())
	s, err := ingress.NewTLS(ingress.TLSConfig{Domains: append([]string{autocertDomain}, domains...), CacheDir: cache,
		DirectoryURL: closed, Email: "ops@example.org", Logger: log})
	require.NoError(t, err)
	return s, cert
}

func TestAutocertServesOnlyItsDomain(t *testing.T) {
	t.Parallel()
	b := setup(t, ingress.Config{})
	s, cert := acmeSetup(t, nil)
	require.NotNil(t, s.Manager)
	require.Equal(t, "ops@example.org", s.Manager.Email)
	require.Contains(t, s.Config.NextProtos, "acme-tls/1", "TLS-ALPN-01 challenges are answered on the TLS port")
	require.Equal(t, uint16(tls.VersionTLS12), s.Config.MinVersion)

	// The host policy refuses other names before anything is asked of the CA.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Manager.HostPolicy(ctx, autocertDomain))
	require.Error(t, s.Manager.HostPolicy(ctx, "evil.example.com"))
	_, err := s.Config.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.com"})
	require.ErrorContains(t, err, "evil.example.com")

	logs := logtest.New()
	addr := serveTLS(t, b.h, s.Config, logs.Logger())
	url := "https://" + addr + "/webhooks/elevenlabs"
	payload := body("acme-1", `{"job_id":"acme-1"}`, "over acme tls")
	code, serial := postTLS(t, tlsClient(autocertDomain, cert.x509), url, payload, elevenlabs.Sign(b.secret, time.Now(), payload))
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 42, serial, "the cached certificate is served: no new one is requested after a restart")
	require.Len(t, events(t, b.q), 1)

	// A client naming another host gets no certificate at all.
	_, err = tlsClient("evil.example.com", cert.x509).Get("https://" + addr + "/healthz")
	require.Error(t, err)
	var certErr *tls.CertificateVerificationError
	require.False(t, errors.As(err, &certErr), "refused in the handshake, not served a certificate: %v", err)
	require.Eventually(t, func() bool {
		for _, l := range logs.Lines(t) {
			if err, _ := l["err"].(string); l["msg"] == "http server" && l["level"] == "DEBUG" && strings.Contains(err, "evil.example.com") {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the refused handshake is logged at debug, not on stderr")
}

func TestACMEHTTPHandler(t *testing.T) {
	t.Parallel()
	s, _ := acmeSetup(t, nil)
	require.NotNil(t, s.ACMEHandler)
	srv := ingress.NewServer("", s.ACMEHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, host, path string) *http.Response {
		req, err := http.NewRequest(method, "http://"+ln.Addr().String()+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusNotFound, do(http.MethodGet, autocertDomain, "/.well-known/acme-challenge/unknown-token").StatusCode,
		"a challenge nobody started")
	require.Equal(t, http.StatusForbidden, do(http.MethodGet, "evil.example.com", "/.well-known/acme-challenge/x").StatusCode)
	resp := do(http.MethodGet, autocertDomain, "/healthz")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "https://"+autocertDomain+"/healthz", resp.Header.Get("Location"))
	require.Equal(t, http.StatusBadRequest, do(http.MethodPost, autocertDomain, "/webhooks/elevenlabs").StatusCode,
		"a webhook sent over plain HTTP is refused, not redirected")
}

// Warm gets every domain's certificate before the first webhook needs it:
// the cached one at once; one not cached is asked of the CA, which here is
// a closed local port, so the failure is logged and nothing is served.
func TestAutocertWarm(t *testing.T) {
	t.Parallel()
	logs := logtest.New()
	s, _ := acmeSetup(t, logs.Logger(), "fresh.example.org")
	s.Warm()
	require.True(t, logs.Has(t, "TLS certificate ready", "domain", autocertDomain), "%s", logs.String())
	require.True(t, logs.Has(t, "no TLS certificate yet; the next connection tries again", "domain", "fresh.example.org"), "%s", logs.String())
	require.False(t, logs.Has(t, "TLS certificate ready", "domain", "fresh.example.org"))

	var none *ingress.TLS
	none.Warm() // no TLS: nothing to do
}
