package queue_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestOpenAudioStreamsTheObjectAndChecksIt(t *testing.T) {
	t.Parallel()
	q := natstest.Queue(t, queue.Config{})
	ctx := context.Background()
	data := make([]byte, 3<<20+12345) // many chunks, the last one short
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	_, err := q.Audio.Put(ctx, jetstream.ObjectMeta{Name: "big"}, bytes.NewReader(data))
	require.NoError(t, err)

	ar, err := q.OpenAudio(ctx, "big")
	require.NoError(t, err)
	require.EqualValues(t, len(data), ar.Info.Size)
	got, err := io.ReadAll(ar)
	require.NoError(t, err)
	require.NoError(t, ar.Close())
	require.True(t, bytes.Equal(data, got), "the object comes back byte for byte")
	// Readers leave no consumers behind: streams limit how many they hold.
	st, err := q.JS.Stream(ctx, "OBJ_AUDIO")
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Consumers)

	_, err = q.Audio.Put(ctx, jetstream.ObjectMeta{Name: "empty"}, bytes.NewReader(nil))
	require.NoError(t, err)
	ar, err = q.OpenAudio(ctx, "empty")
	require.NoError(t, err)
	got, err = io.ReadAll(ar)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = q.OpenAudio(ctx, "missing")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
}

// Closing the reader ends a Read that waits, as the upload's cancel does.
func TestOpenAudioCloseStopsReading(t *testing.T) {
	t.Parallel()
	q := natstest.Queue(t, queue.Config{})
	ctx := context.Background()
	_, err := q.Audio.Put(ctx, jetstream.ObjectMeta{Name: "obj"}, bytes.NewReader(make([]byte, 1<<20)))
	require.NoError(t, err)
	ar, err := q.OpenAudio(ctx, "obj")
	require.NoError(t, err)
	buf := make([]byte, 1000)
	_, err = ar.Read(buf)
	require.NoError(t, err)
	require.NoError(t, ar.Close())
	_, err = io.ReadAll(ar)
	require.Error(t, err, "a closed reader does not deliver the rest")
}
