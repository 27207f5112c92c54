package control_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/query"
)

// A dead letter replayed after the fault is gone is applied by the sink,
// and the dead letter is marked replayed.
func TestReplayDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Now().UTC()
	queued, err := json.Marshal(&event.Event{V: event.Version, Type: event.TypeQueued, JobID: "job-dl", At: at, Process: "submit",
		Job: &event.Job{V: event.Version, JobID: "job-dl", Source: event.Source{URL: "https://example.org/a.mp3"},
			Options: event.Options{Model: "scribe_v1"}, At: at}})
	require.NoError(t, err)
	require.NoError(t, b.p.Queue.PublishEvent(b.ctx, &event.Event{Type: event.TypeDeadLetter, Process: "sink",
		DeadLetter: &event.DeadLetter{Stream: event.StreamEvents, Subject: event.TypeQueued.Subject(), MsgID: "job-dl:queued",
			Seq: 7, Data: queued, Error: "postgres was read-only", Attempts: 3}}))
	var id int64
	var replayed *time.Time
	waitRow := func(cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-b.ctx.Done():
				t.Fatal("timed out")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitRow(func() bool {
		return b.conn.QueryRow(b.ctx, `SELECT id FROM dead_letters WHERE msg_id = 'job-dl:queued'`).Scan(&id) == nil
	})

	subject, err := b.ctl.ReplayDeadLetter(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, "stt.events.queued", subject)
	b.waitState(t, "job-dl", "queued")
	waitRow(func() bool {
		return b.conn.QueryRow(b.ctx, `SELECT replayed_at FROM dead_letters WHERE id = $1`, id).Scan(&replayed) == nil && replayed != nil
	})

	_, err = b.ctl.ReplayDeadLetter(b.ctx, id+100)
	require.ErrorIs(t, err, query.ErrNotFound)
}
