// Package natstest gives each test its own in-process JetStream server on a
// random port with a temporary store, shut down in t.Cleanup. Test-only.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scribeq/scribeq/pkg/natsembed"
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
