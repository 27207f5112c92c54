package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/scribeq/scribeq/pkg/ingress"
)

// TLSFlags let the ingress serve HTTPS itself, with certificate files or
// with certificates it obtains for a domain. Without them it serves plain
// HTTP, for a reverse proxy or tunnel that terminates TLS.
type TLSFlags struct {
	TLSCert       string   `name:"tls-cert" env:"SCRIBEQ_TLS_CERT" placeholder:"FILE" help:"Serve HTTPS with this PEM certificate (chain included); reloaded when the file changes."`
	TLSKey        string   `name:"tls-key" env:"SCRIBEQ_TLS_KEY" placeholder:"FILE" help:"The PEM private key of --tls-cert."`
	TLSDomain     []string `name:"tls-domain" env:"SCRIBEQ_TLS_DOMAIN" sep:"," placeholder:"DOMAIN" help:"Serve HTTPS with certificates obtained automatically (ACME, Let's Encrypt) for these domains only; the CA must reach this listener on port 443, or --acme-http-addr on port 80."`
	TLSCacheDir   string   `name:"tls-cache-dir" env:"SCRIBEQ_TLS_CACHE_DIR" placeholder:"DIR" help:"Where automatic certificates and the ACME account are kept (default: <data-dir>/autocert); keep it across restarts."`
	TLSEmail      string   `name:"tls-email" env:"SCRIBEQ_TLS_EMAIL" placeholder:"EMAIL" help:"Contact address given to the certificate authority for expiry notices."`
	ACMEDirectory string   `name:"acme-directory" env:"SCRIBEQ_ACME_DIRECTORY" placeholder:"URL" help:"ACME directory of the certificate authority (default: Let's Encrypt production)."`
	ACMEHTTPAddr  string   `name:"acme-http-addr" env:"SCRIBEQ_ACME_HTTP_ADDR" placeholder:"ADDR" help:"Also answer ACME HTTP-01 challenges here (e.g. :80) and redirect other requests to https (default: none; TLS-ALPN-01 on the ingress port)."`
}

func (f *TLSFlags) config(dataDir string, log *slog.Logger) ingress.TLSConfig {
	domains := f.domains()
	cache := f.TLSCacheDir
	if cache == "" && len(domains) > 0 {
		cache = filepath.Join(dataDir, "autocert")
	}
	return ingress.TLSConfig{
		CertFile: f.TLSCert, KeyFile: f.TLSKey, Domains: domains, CacheDir: cache,
		Email: f.TLSEmail, DirectoryURL: f.ACMEDirectory, Logger: log,
	}
}

// domains is the list without blanks, so that an empty variable means none.
func (f *TLSFlags) domains() []string { return splitSecrets(f.TLSDomain) }

// tlsMode names the mode for the start-up log line.
func (f *TLSFlags) tlsMode() string {
	switch {
	case f.TLSCert != "":
		return "files"
	case len(f.domains()) > 0:
		return "acme"
	}
	return "off"
}

// serveIngress runs srv on ln (with TLS when t is set) and, with ACME and
// an --acme-http-addr, the challenge server beside it, until ctx ends or
// one of them fails.
func (f *TLSFlags) serveIngress(ctx context.Context, srv *http.Server, ln net.Listener, t *ingress.TLS, log *slog.Logger) error {
	if t == nil {
		return serve(ctx, srv, ln, log)
	}
	srv.TLSConfig = t.Config
	// Certificates are obtained once the listeners are up: the CA's
	// challenge connects to them.
	if t.ACMEHandler == nil || f.ACMEHTTPAddr == "" {
		go t.Warm()
		return serve(ctx, srv, ln, log)
	}
	aln, err := net.Listen("tcp", f.ACMEHTTPAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("ingress: ACME HTTP-01 listener on %s: %w", f.ACMEHTTPAddr, err)
	}
	log.Info("answering ACME HTTP-01 challenges", "addr", aln.Addr().String())
	go t.Warm()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	acme := &http.Server{Handler: t.ACMEHandler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func() error{
		func() error { return serve(ctx, srv, ln, log) },
		func() error { return serve(ctx, acme, aln, log) },
	} {
		wg.Go(func() {
			errs[i] = run()
			cancel() // one server down takes the other with it
		})
	}
	wg.Wait()
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}
