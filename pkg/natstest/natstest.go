// Package natstest gives each test its own in-process JetStream server on a
// random port with a temporary store, shut down in t.Cleanup. Test-only.
package natstest

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scribeq/scribeq/pkg/natsembed"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Server starts a fresh JetStream server for t and returns it.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Queue starts a fresh server for t and returns the queue opened on it with
// cfg, closed in t.Cleanup.
func Queue(t testing.TB, cfg queue.Config) *queue.Queue {
	t.Helper()
	s := Server(t)
	nc, err := queue.Connect(s.ClientURL(), t.Name(), nil)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	q, err := queue.Open(context.Background(), nc, cfg)
	if err != nil {
		nc.Close()
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(q.Close)
	return q
}
