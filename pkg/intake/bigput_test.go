package intake_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natsembed"
	"github.com/scribeq/scribeq/pkg/queue"
)

// A recording of a gigabyte arrives faster than JetStream, fsyncing every
// write, stores it: the first try is refused (429 or a stalled publisher),
// and the item is sent again, paced, instead of failing.
func TestLargeFileIsStoredDespiteBackPressure(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	t.Parallel()
	srv, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir(), Port: -1})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := queue.Connect(srv.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	q, err := queue.Open(ctx, nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)

	// A 1 GiB WAV: a valid header, then silence streamed to disk.
	path := filepath.Join(t.TempDir(), "long.wav")
	f, err := os.Create(path)
	require.NoError(t, err)
	const size = 1 << 30
	_, err = f.Write(wavHeader(1, 16000, size-44))
	require.NoError(t, err)
	_, err = io.CopyN(f, zeros{}, size-44)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	in, err := intake.NewWithConfig(q, intake.Config{})
	require.NoError(t, err)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{path}, Options: event.Options{Model: "scribe_v2"}}, nil)
	require.NoError(t, err)
	res, err := plan.Queue(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status, res[0].Reason)
	info, err := q.Audio.GetInfo(ctx, jobByID(t, q, res[0].JobID).Source.Object)
	require.NoError(t, err)
	require.EqualValues(t, size, info.Size)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
