package intake_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natsembed"
	"github.com/scribeq/scribeq/pkg/queue"
)

// signalHandler closes saw the first time a record's message contains want.
type signalHandler struct {
	slog.Handler
	want string
	once *sync.Once
	saw  chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.want) {
		h.once.Do(func() { close(h.saw) })
	}
	return nil
}

func (signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// NATS going away in the middle of a submit costs the user nothing: the
// items wait for it and are queued once it is back.
func TestQueueWaitsOutANATSRestart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	storeDir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: storeDir, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := queue.Connect(srv.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := queue.Open(ctx, nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)

	saw := make(chan struct{})
	log := slog.New(signalHandler{Handler: slog.DiscardHandler, want: "NATS unavailable", once: &sync.Once{}, saw: saw})
	in, err := intake.NewWithConfig(q, intake.Config{Logger: log})
	require.NoError(t, err)
	dir := t.TempDir()
	var sources []string
	for i := range 3 {
		sources = append(sources, writeFile(t, filepath.Join(dir, fmt.Sprintf("r%d.wav", i)), wav(t, 0.5, i)))
	}
	plan, err := in.Scan(ctx, intake.Request{Sources: sources, Options: event.Options{Model: "scribe_v2"}}, nil)
	require.NoError(t, err)
	require.Equal(t, 3, plan.Totals.Items)

	srv.Shutdown()
	srv.WaitForShutdown()
	type outcome struct {
		res []intake.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := plan.Queue(ctx, nil)
		done <- outcome{res, err}
	}()
	select {
	case <-saw:
	case o := <-done:
		t.Fatalf("Queue returned while NATS was down: %v %+v", o.err, o.res)
	case <-ctx.Done():
		t.Fatal("no retry while NATS was down")
	}
	srv, err = natsembed.Start(natsembed.Config{StoreDir: storeDir, Port: port})
	require.NoError(t, err)
	o := <-done
	require.NoError(t, o.err)
	for _, r := range o.res {
		require.Equal(t, intake.Queued, r.Status, r.Reason)
		require.Empty(t, r.Reason, "a retry within one submit is not an interrupted submit")
	}
	require.Len(t, streamMessages(t, q, event.StreamJobs), 3)
}
