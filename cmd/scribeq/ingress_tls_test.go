package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/natstest"
)

// parseIngress parses args as kong does at start, with the environment as
// it is.
func parseIngress(t *testing.T, args ...string) *CLI {
	t.Helper()
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("scribeq"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	require.NoError(t, err)
	_, err = parser.Parse(append([]string{"ingress"}, args...))
	require.NoError(t, err)
	return &cli
}

// Secrets, proxies and TLS settings come from the environment the way the
// README shows them, spaces and all.
func TestIngressSettingsFromEnv(t *testing.T) {
	t.Setenv("SCRIBEQ_WEBHOOK_SECRETS", " whsec_new , whsec_old,")
	t.Setenv("SCRIBEQ_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.7")
	t.Setenv("SCRIBEQ_TLS_DOMAIN", "webhooks.example.org, hooks.example.org")
	t.Setenv("SCRIBEQ_TLS_EMAIL", "ops@example.org")
	cli := parseIngress(t, "--data-dir=/var/lib/scribeq")
	cfg := cli.Ingress.ingressConfig(cli.DataDir, nil)
	require.Equal(t, []string{"whsec_new", "whsec_old"}, cfg.Secrets, "new first, old kept during rotation")
	require.Equal(t, []string{"10.0.0.0/8", "192.0.2.7"}, cfg.TrustedProxies)
	tc := cli.Ingress.TLSFlags.config(cli.DataDir, nil)
	require.Equal(t, []string{"webhooks.example.org", "hooks.example.org"}, tc.Domains)
	require.Equal(t, "/var/lib/scribeq/autocert", tc.CacheDir, "certificates are kept in the data folder by default")
	require.Equal(t, "ops@example.org", tc.Email)
	require.Equal(t, "acme", cli.Ingress.tlsMode())

	t.Setenv("SCRIBEQ_TLS_DOMAIN", "")
	t.Setenv("SCRIBEQ_TLS_CERT", "/etc/tls/tls.crt")
	t.Setenv("SCRIBEQ_TLS_KEY", "/etc/tls/tls.key")
	cli = parseIngress(t)
	tc = cli.Ingress.TLSFlags.config(cli.DataDir, nil)
	require.Equal(t, "/etc/tls/tls.crt", tc.CertFile)
	require.Equal(t, "/etc/tls/tls.key", tc.KeyFile)
	require.Empty(t, tc.CacheDir)
	require.Equal(t, "files", cli.Ingress.tlsMode())
}

func writeTestCert(t *testing.T, dir string, serial int64, names ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "scribeq test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
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
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	at := time.Now().Add(time.Duration(serial) * time.Minute) // each pair looks newer
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		require.NoError(t, os.WriteFile(path, data, 0o600))
		require.NoError(t, os.Chtimes(path, at, at))
	}
	return certFile, keyFile, cert
}

// httpsPost posts a signed webhook over a new connection trusting roots
// and returns the status and the serial of the certificate shown.
func httpsPost(t *testing.T, url, serverName string, payload []byte, secret string, roots ...*x509.Certificate) (int, int64) {
	t.Helper()
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}, DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(secret, time.Now(), payload))
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func tlsPayload(id string) []byte {
	return []byte(`{"type":"speech_to_text_transcription","event_timestamp":1700000000,"data":{"request_id":"` + id +
		`","webhook_metadata":{"job_id":"` + id + `"},"transcription":{"language_code":"en","text":"hi","words":[]}}}`)
}

// The ingress command serves HTTPS from certificate files and picks up a
// renewed pair without a restart.
func TestIngressServesTLSFromFiles(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	ns := natstest.Server(t)
	dir := t.TempDir()
	certFile, keyFile, first := writeTestCert(t, dir, 1, "127.0.0.1")
	env := append(os.Environ(), "SCRIBEQ_NATS_URL="+ns.ClientURL(), "SCRIBEQ_DATA_DIR="+t.TempDir(),
		"SCRIBEQ_WEBHOOK_SECRETS=whsec_tls", "SCRIBEQ_TLS_CERT="+certFile, "SCRIBEQ_TLS_KEY="+keyFile, "SCRIBEQ_LOG_FORMAT=json")
	p := startBinary(t, bin, env, "ingress", "--addr=127.0.0.1:0")
	listening := p.line("ingress listening")
	require.Equal(t, "files", listening["tls"])
	url := "https://" + listening["addr"].(string) + "/webhooks/elevenlabs"

	code, serial := httpsPost(t, url, "127.0.0.1", tlsPayload("tls-a"), "whsec_tls", first)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 1, serial)

	_, _, second := writeTestCert(t, dir, 2, "127.0.0.1")
	code, serial = httpsPost(t, url, "127.0.0.1", tlsPayload("tls-b"), "whsec_tls", first, second)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 2, serial, "the renewed certificate, without a restart")
	p.line("TLS certificate reloaded")
	p.stop()
}

// With --tls-domain the command serves the certificate it keeps in its
// cache for that domain only, and answers ACME HTTP-01 on its own port.
// The CA is a closed local port: nothing here leaves the machine.
func TestIngressServesAutomaticCertificates(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	ns := natstest.Server(t)
	cache := t.TempDir()
	certFile, keyFile, cert := writeTestCert(t, t.TempDir(), 7, "webhooks.example.org")
	keyPEM, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	certPEM, err := os.ReadFile(certFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cache, "webhooks.example.org"), append(keyPEM, certPEM...), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/directory"
	require.NoError(t, ln.Close())

	env := append(os.Environ(), "SCRIBEQ_NATS_URL="+ns.ClientURL(), "SCRIBEQ_DATA_DIR="+t.TempDir(),
		"SCRIBEQ_WEBHOOK_SECRETS=whsec_acme", "SCRIBEQ_TLS_DOMAIN=webhooks.example.org", "SCRIBEQ_TLS_CACHE_DIR="+cache,
		"SCRIBEQ_ACME_DIRECTORY="+closed, "SCRIBEQ_ACME_HTTP_ADDR=127.0.0.1:0", "SCRIBEQ_LOG_FORMAT=json")
	p := startBinary(t, bin, env, "ingress", "--addr=127.0.0.1:0")
	acmeAddr := p.line("answering ACME HTTP-01 challenges")["addr"].(string)
	listening := p.line("ingress listening")
	require.Equal(t, "acme", listening["tls"])
	url := "https://" + listening["addr"].(string) + "/webhooks/elevenlabs"

	code, serial := httpsPost(t, url, "webhooks.example.org", tlsPayload("acme-a"), "whsec_acme", cert)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 7, serial)
	require.Equal(t, "webhooks.example.org", p.line("TLS certificate ready")["domain"], "loaded at start, not at the first webhook")

	req, err := http.NewRequest(http.MethodGet, "http://"+acmeAddr+"/.well-known/acme-challenge/unknown", nil)
	require.NoError(t, err)
	req.Host = "evil.example.com"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "challenges only for the configured domain")
	p.stop()
}
