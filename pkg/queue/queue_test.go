package queue_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func open(t *testing.T, cfg queue.Config) *queue.Queue { return natstest.Queue(t, cfg) }

func TestOpenIsIdempotent(t *testing.T) {
	t.Parallel()
	s := natstest.Server(t)
	for range 2 {
		nc, err := queue.Connect(s.ClientURL(), t.Name(), nil)
		require.NoError(t, err)
		q, err := queue.Open(context.Background(), nc, queue.Config{})
		require.NoError(t, err)
		info, err := q.JS.Stream(context.Background(), event.StreamJobs)
		require.NoError(t, err)
		// Limits retention: the duplicate window must survive a restart.
		require.Equal(t, jetstream.LimitsPolicy, info.CachedInfo().Config.Retention)
		require.Equal(t, jetstream.FileStorage, info.CachedInfo().Config.Storage)
		q.Close()
	}
}

func TestPublishJobDeduplicates(t *testing.T) {
	t.Parallel()
	q := open(t, queue.Config{})
	ctx := context.Background()
	j := &event.Job{V: 1, JobID: "j1", Source: event.Source{URL: "https://example.org/a.mp3"}, Options: event.Options{Model: "scribe_v2"}}
	dup, err := q.PublishJob(ctx, j)
	require.NoError(t, err)
	require.False(t, dup)
	dup, err = q.PublishJob(ctx, j)
	require.NoError(t, err)
	require.True(t, dup)
	st, err := q.JS.Stream(ctx, event.StreamJobs)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs)
}

func TestClaimCheck(t *testing.T) {
	t.Parallel()
	q := open(t, queue.Config{ClaimCheckBytes: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := q.SinkConsumer(ctx)
	require.NoError(t, err)

	big := json.RawMessage(`{"text":"` + strings.Repeat("word ", 2000) + `","words":[]}`)
	small := json.RawMessage(`{"text":"hi","words":[]}`)
	for i, tr := range []json.RawMessage{small, big} {
		require.NoError(t, q.PublishEvent(ctx, &event.Event{
			Type: event.TypeCompleted, RequestID: "r" + string(rune('0'+i)), Transcription: tr,
		}))
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got []*event.Event
	for m := range batch.Messages() {
		require.Less(t, len(m.Data()), 1024, "every message stays under the threshold")
		ev, err := event.Decode(m.Data())
		require.NoError(t, err)
		full, err := q.Resolve(ctx, ev)
		require.NoError(t, err)
		require.Empty(t, full.PayloadRef)
		got = append(got, full)
		if ev.PayloadRef != "" {
			require.NoError(t, q.ReleasePayload(ctx, ev.PayloadRef))
			_, err := q.Resolve(ctx, ev)
			require.ErrorIs(t, err, queue.ErrPayloadMissing)
		}
		require.NoError(t, m.Ack())
	}
	require.Len(t, got, 2)
	require.JSONEq(t, string(small), string(got[0].Transcription))
	require.JSONEq(t, string(big), string(got[1].Transcription))
}

// A duplicate of a large event leaves no object behind: only the stored
// message's claim check remains.
func TestDuplicateClaimCheckLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	q := open(t, queue.Config{ClaimCheckBytes: 1024})
	ctx := context.Background()
	big := json.RawMessage(`{"text":"` + strings.Repeat("word ", 2000) + `"}`)
	for range 3 {
		require.NoError(t, q.PublishEvent(ctx, &event.Event{Type: event.TypeCompleted, RequestID: "dup", Transcription: big}))
	}
	objs, err := q.Payloads.List(ctx)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	st, err := q.JS.Stream(ctx, event.StreamEvents)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctx, event.TypeCompleted.Subject())
	require.NoError(t, err)
	ev, err := event.Decode(m.Data)
	require.NoError(t, err)
	require.Equal(t, objs[0].Name, ev.PayloadRef, "the survivor is the one the message references")
}
