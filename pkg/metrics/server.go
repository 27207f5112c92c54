package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Check is one condition of readiness: Check returns nil while the
// dependency Name is usable.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// NATSCheck is ready while nc is connected.
func NATSCheck(nc *nats.Conn) Check {
	return Check{Name: "nats", Check: func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	}}
}

// PingCheck is ready while ping succeeds, e.g. a Postgres pool's Ping.
func PingCheck(name string, ping func(ctx context.Context) error) Check {
	return Check{Name: name, Check: ping}
}

// checkTimeout bounds each check, under a probe's usual timeout (3 s in
// deploy/kubernetes).
const checkTimeout = 2 * time.Second

// Server serves a worker's /metrics, /healthz and /readyz. Until
// SetChecks is called /readyz answers 503 "starting": a worker still
// waiting for NATS at start is alive but not ready. Every method is a
// no-op on a nil Server, which is what Start returns for an empty address.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	done chan error

	mu     sync.Mutex
	checks []Check
	ready  bool // SetChecks was called
}

// Start listens on addr and serves reg's metrics and the probes in the
// background until Shutdown. An empty addr serves nothing and returns a
// nil *Server.
func Start(addr string, reg *Registry, log *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	s := &Server{ln: ln, log: log, done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           s.handler(reg),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
		s.done <- err
	}()
	log.Info("serving metrics and health probes", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the address the server listens on ("" for a nil Server).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// SetChecks sets what /readyz checks, and makes it answer.
func (s *Server) SetChecks(checks ...Check) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks, s.ready = checks, true
}

// Shutdown stops accepting probes and scrapes and waits for those in
// flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("metrics: shut down %s: %w", s.Addr(), err)
	}
	return <-s.done
}

// handler routes /metrics (reg), /healthz and /readyz.
func (s *Server) handler(reg *Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Alive is all it says: a dependency's outage must not get the
		// process restarted, only taken out of readiness.
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks, ready := s.checks, s.ready
	s.mu.Unlock()
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
		return
	}
	status, results := http.StatusOK, map[string]string{}
	for _, c := range checks {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		err := c.Check(ctx)
		cancel()
		if err != nil {
			status = http.StatusServiceUnavailable
			results[c.Name] = err.Error()
			continue
		}
		results[c.Name] = "ok"
	}
	body := map[string]any{"status": "ready", "checks": results}
	if status != http.StatusOK {
		body["status"] = "not ready"
		s.log.Debug("not ready", "checks", results)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
