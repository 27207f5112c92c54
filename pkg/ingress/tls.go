package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLSConfig says how the ingress serves HTTPS itself. ElevenLabs posts
// webhooks only to https URLs, so without TLS here a reverse proxy or a
// tunnel must terminate it. Set CertFile and KeyFile, or Domains, or
// neither (plain HTTP).
type TLSConfig struct {
	// CertFile and KeyFile are a PEM certificate (chain first, leaf at the
	// top) and its key. They are read again on the first handshake after
	// either file changes, so a renewed certificate (cert-manager, certbot)
	// is served without a restart; a pair that does not load keeps the
	// previous one in service.
	CertFile, KeyFile string
	// Domains get certificates from an ACME CA (Let's Encrypt by default),
	// obtained on the first handshake that names one and renewed before
	// they expire. Handshakes for any other name are refused, so nobody can
	// make us request certificates for names they pick. The CA checks the
	// domain over TLS-ALPN-01 on this listener, which must therefore be
	// reachable on port 443, or over HTTP-01 when ACMEHandler is served on
	// port 80.
	Domains []string
	// CacheDir keeps ACME accounts and certificates across restarts (the
	// CA limits how often a certificate may be issued). Required with
	// Domains; the commands default it to <data-dir>/autocert.
	CacheDir string
	// Email is given to the CA for expiry and incident notices. Optional.
	Email string
	// DirectoryURL is the ACME directory. Default Let's Encrypt production;
	// https://acme-staging-v02.api.letsencrypt.org/directory to try things out.
	DirectoryURL string
	// Logger reports certificate reloads; default discard.
	Logger *slog.Logger
}

// Enabled reports whether any TLS mode is configured.
func (c TLSConfig) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || len(c.Domains) > 0
}

func (c TLSConfig) validate() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("ingress: TLS: a certificate file needs its key file and the other way round (SCRIBEQ_TLS_CERT, SCRIBEQ_TLS_KEY)")
	case c.CertFile != "" && len(c.Domains) > 0:
		return errors.New("ingress: TLS: certificate files and automatic certificates (SCRIBEQ_TLS_DOMAIN) exclude each other")
	case len(c.Domains) > 0 && c.CacheDir == "":
		return errors.New("ingress: TLS: automatic certificates need a cache directory, or every restart would request new ones")
	}
	for _, d := range c.Domains {
		if d == "" || strings.ContainsAny(d, "/:*") || !strings.Contains(strings.Trim(d, "."), ".") {
			return fmt.Errorf("ingress: TLS: %q is not a domain name (no scheme, port or wildcard)", d)
		}
	}
	return nil
}

// TLS is what serving HTTPS needs: the tls.Config for the listener and,
// with automatic certificates, a handler for port 80.
type TLS struct {
	// Config serves the certificates; give it to http.Server.TLSConfig.
	Config *tls.Config
	// ACMEHandler answers the CA's HTTP-01 challenges and redirects every
	// other GET to https. Nil unless Domains are set; serving it is
	// optional (TLS-ALPN-01 on the TLS listener is enough when that
	// listener is reachable on port 443).
	ACMEHandler http.Handler
	// Manager is the ACME certificate manager, nil without Domains.
	Manager *autocert.Manager

	domains []string
	log     *slog.Logger
}

// NewTLS checks c and prepares what it describes; it returns nil, nil when
// c configures no TLS. Certificate files are loaded now, so a missing or
// mismatched pair fails at start rather than at the first handshake.
func NewTLS(c TLSConfig) (*TLS, error) {
	if !c.Enabled() {
		return nil, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CertFile != "" {
		f := &certFiles{certFile: c.CertFile, keyFile: c.KeyFile, log: c.Logger}
		if err := f.load(); err != nil {
			return nil, err
		}
		return &TLS{Config: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.get}}, nil
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(c.CacheDir),
		HostPolicy: autocert.HostWhitelist(c.Domains...),
		Email:      c.Email,
	}
	if c.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: c.DirectoryURL}
	}
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	return &TLS{Config: cfg, ACMEHandler: m.HTTPHandler(nil), Manager: m, domains: c.Domains, log: c.Logger}, nil
}

// Warm loads or obtains each domain's certificate now rather than in the
// first handshake that names it: ElevenLabs sends a webhook once, and one
// whose handshake waits for the CA may time out and be lost. Call it once
// the TLS listener accepts connections, since the CA's TLS-ALPN-01 check
// connects to it. A failure is logged; the next handshake tries again.
// Without Domains it does nothing.
func (t *TLS) Warm() {
	if t == nil || t.Manager == nil {
		return
	}
	for _, d := range t.domains {
		// What a modern client offers, so the ECDSA certificate is the one
		// obtained, as for real handshakes.
		cert, err := t.Manager.GetCertificate(&tls.ClientHelloInfo{
			ServerName:       d,
			CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
			SupportedCurves:  []tls.CurveID{tls.CurveP256},
		})
		if err != nil {
			t.log.Warn("no TLS certificate yet; the next connection tries again", "domain", d, "err", err)
			continue
		}
		var notAfter time.Time
		if cert.Leaf != nil {
			notAfter = cert.Leaf.NotAfter
		}
		t.log.Info("TLS certificate ready", "domain", d, "not_after", notAfter)
	}
}

// certFiles serves a certificate pair from disk, reloading it when either
// file's modification time or size changes. A stat per handshake costs
// far less than the handshake.
type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  [2]fileStamp // of the pair in cert
	failed [2]fileStamp // of the last pair that did not load, not retried until it changes
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// load reads the pair; it fails without touching what is being served.
func (f *certFiles) load() error {
	cs, err := stampOf(f.certFile)
	if err != nil {
		return fmt.Errorf("ingress: TLS certificate: %w", err)
	}
	ks, err := stampOf(f.keyFile)
	if err != nil {
		return fmt.Errorf("ingress: TLS key: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("ingress: TLS certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("ingress: TLS certificate %s: %w", f.certFile, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cert, f.stamp = &pair, [2]fileStamp{cs, ks}
	return nil
}

// get is tls.Config.GetCertificate.
func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cs, cerr := stampOf(f.certFile)
	ks, kerr := stampOf(f.keyFile)
	now := [2]fileStamp{cs, ks}
	f.mu.Lock()
	changed := cerr == nil && kerr == nil && now != f.stamp && now != f.failed
	f.mu.Unlock()
	if changed {
		// A renewal writes two files, not at once: a pair caught halfway
		// does not load, and the next handshake after the second write
		// tries again.
		if err := f.load(); err != nil {
			f.mu.Lock()
			f.failed = now
			f.mu.Unlock()
			f.log.Warn("TLS certificate files changed but do not load; still serving the previous certificate", "err", err)
		} else {
			f.mu.Lock()
			leaf := f.cert.Leaf
			f.mu.Unlock()
			f.log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
				"not_after", leaf.NotAfter)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cert, nil
}
