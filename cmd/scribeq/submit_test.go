package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// The estimate comes before any upload: --dry-run and --max-cost queue
// nothing, and their exit codes say so.
func TestSubmitDryRunAndMaxCost(t *testing.T) {
	t.Parallel()
	srv := natstest.Server(t)
	dir := t.TempDir()
	for _, name := range []string{"01-the-quick-brown-fox.wav", "05-a-cup-of-tea.wav"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "audio", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	ctx := t.Context()
	jobs := func() uint64 {
		nc, err := queue.Connect(srv.ClientURL(), t.Name(), nil)
		require.NoError(t, err)
		defer nc.Close()
		q, err := queue.Open(ctx, nc, queue.Config{})
		require.NoError(t, err)
		st, err := q.JS.Stream(ctx, event.StreamJobs)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}
	submit := func(args ...string) int {
		base := []string{"--nats-url", srv.ClientURL(), "--data-dir", t.TempDir(), "--log-level", "error",
			"submit", "--progress", "plain"}
		return run(context.Background(), append(append(base, args...), dir))
	}

	require.Equal(t, 0, submit("--dry-run"))
	require.Zero(t, jobs(), "a dry run queues nothing")
	require.Equal(t, 4, submit("--max-cost", "0.0000001"))
	require.Zero(t, jobs(), "over budget: nothing queued")
	require.Equal(t, 0, submit("--max-cost", "1"))
	require.EqualValues(t, 2, jobs())
	require.Equal(t, 0, submit(), "the same again queues nothing and is not an error")
	require.EqualValues(t, 2, jobs())
}
