package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			http.Error(w, `{"status":"nats not connected"}`, http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	if err := (&HealthcheckCmd{URL: srv.URL + "/ok", Timeout: 5 * time.Second}).Run(ctx); err != nil {
		t.Fatalf("2xx endpoint: %v", err)
	}
	err := (&HealthcheckCmd{URL: srv.URL + "/readyz", Timeout: 5 * time.Second}).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "nats not connected") {
		t.Fatalf("503 endpoint: want an error with the status and the body, got %v", err)
	}
	start := time.Now()
	if err := (&HealthcheckCmd{URL: srv.URL + "/slow", Timeout: 200 * time.Millisecond}).Run(ctx); err == nil {
		t.Fatal("endpoint slower than --timeout: want an error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("--timeout 200ms took %s", d)
	}
	if err := (&HealthcheckCmd{URL: "http://127.0.0.1:1/healthz", Timeout: time.Second}).Run(ctx); err == nil {
		t.Fatal("closed port: want an error")
	}
}
