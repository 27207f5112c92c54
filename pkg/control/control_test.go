package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/control"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/pipeline"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	ctx  context.Context
	p    *pipeline.Pipeline
	conn *pgx.Conn
	ctl  *control.Control
	dir  string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	dbURL := pgtest.NewDB(t)
	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort: -1, DataDir: t.TempDir(), DatabaseURL: dbURL,
		IngressAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", EmulatorDelay: 10 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	db, err := query.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return &testBundle{ctx: ctx, p: p, conn: conn, ctl: control.New(db, p.Queue, "test"), dir: t.TempDir()}
}

func (b *testBundle) submit(t *testing.T, name string, seed int16) string {
	t.Helper()
	var wav bytes.Buffer
	require.NoError(t, audio.WriteWAV(&wav, 16000, []int16{seed, seed + 1, seed + 2}, ""))
	path := filepath.Join(b.dir, name)
	require.NoError(t, os.WriteFile(path, wav.Bytes(), 0o644))
	res, err := intake.New(b.p.Queue, nil).Submit(b.ctx, intake.Request{Sources: []string{path}}, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status)
	return res[0].JobID
}

func (b *testBundle) waitState(t *testing.T, id, state string) {
	t.Helper()
	for {
		var got string
		err := b.conn.QueryRow(b.ctx, `SELECT state FROM jobs WHERE job_id = $1`, id).Scan(&got)
		if err == nil && got == state {
			return
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("job %s never reached %s (last %q, %v)", id, state, got, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *testBundle) calls(id string) int {
	n := 0
	for _, c := range b.p.Emulator.Ledger() {
		if c.JobID == id {
			n++
		}
	}
	return n
}

func TestOnlyFailedOrCanceledAreRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t, "a.wav", 1)
	b.waitState(t, id, "completed")
	out, err := b.ctl.Retry(b.ctx, []string{id, "no-such-job"}, "")
	require.NoError(t, err)
	require.ElementsMatch(t, []control.Outcome{
		{JobID: "no-such-job", Reason: "no such job"},
		{JobID: id, Reason: "is completed, only failed or canceled jobs are retried"},
	}, out)
	require.Equal(t, 1, b.calls(id))
}

func TestRetryAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t, "a.wav", 1)
	b.waitState(t, id, "completed")

	// A job that failed (recorded by hand: its message never reached JOBS).
	failedJob := &event.Job{V: 1, JobID: "failed-1", Source: event.Source{URL: "https://example.org/a.mp3"}, Options: event.Options{Model: "scribe_v2"}}
	require.NoError(t, b.p.Queue.PublishEvent(b.ctx, &event.Event{Type: event.TypeQueued, JobID: "failed-1", Job: failedJob}))
	require.NoError(t, b.p.Queue.PublishEvent(b.ctx, &event.Event{Type: event.TypeFailed, JobID: "failed-1", Error: "500 internal"}))
	b.waitState(t, "failed-1", "failed")

	out, err := b.ctl.Retry(b.ctx, nil, "")
	require.NoError(t, err)
	require.Equal(t, []control.Outcome{{JobID: "failed-1", Done: true}}, out)
	b.waitState(t, "failed-1", "completed")
	require.Equal(t, 1, b.calls("failed-1"))
	var attempts int
	require.NoError(t, b.conn.QueryRow(b.ctx, `SELECT attempts FROM jobs WHERE job_id = 'failed-1'`).Scan(&attempts))
	require.Equal(t, 1, attempts)
	var reasons []string
	rows, err := b.conn.Query(b.ctx, `SELECT from_state || '>' || to_state FROM job_events WHERE job_id = 'failed-1' AND from_state IS NOT NULL ORDER BY at, id`)
	require.NoError(t, err)
	reasons, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"queued>failed", "failed>queued", "queued>submitted", "submitted>completed"}, reasons)

	// Cancel: a queued job that was never sent is never sent.
	cj := &event.Job{V: 1, JobID: "cancel-me", Source: event.Source{URL: "https://example.org/b.mp3"}, Options: event.Options{Model: "scribe_v2"}}
	require.NoError(t, b.p.Queue.PublishEvent(b.ctx, &event.Event{Type: event.TypeQueued, JobID: "cancel-me", Job: cj}))
	b.waitState(t, "cancel-me", "queued")
	out, err = b.ctl.Cancel(b.ctx, []string{"cancel-me", id}, "not needed", nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []control.Outcome{{JobID: "cancel-me", Done: true}, {JobID: id, Reason: "is already completed"}}, out)
	b.waitState(t, "cancel-me", "canceled")
	// Now its job message arrives: the submitter acknowledges it unsent.
	data, err := json.Marshal(cj)
	require.NoError(t, err)
	ack, err := b.p.Queue.JS.Publish(b.ctx, event.SubjectJobs, data)
	require.NoError(t, err)
	for {
		cons, err := b.p.Queue.JS.Consumer(b.ctx, event.StreamJobs, queue.ConsumerSubmitter)
		require.NoError(t, err)
		info, err := cons.Info(b.ctx)
		require.NoError(t, err)
		if info.AckFloor.Stream >= ack.Sequence {
			break
		}
		select {
		case <-b.ctx.Done():
			t.Fatal("the canceled job's message was never acknowledged")
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Zero(t, b.calls("cancel-me"))
	b.waitState(t, "cancel-me", "canceled")
}

// A retried job that fails again is recorded as failing again: the new
// attempt's events are not taken for duplicates of the first one's.
func TestRetriedJobCanFailAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := &event.Job{V: 1, JobID: "bad-model", Source: event.Source{URL: "https://example.org/c.mp3"}, Options: event.Options{Model: "scribe_v9"}}
	require.NoError(t, b.p.Queue.PublishEvent(b.ctx, &event.Event{Type: event.TypeQueued, JobID: bad.JobID, Job: bad}))
	_, err := b.p.Queue.PublishJob(b.ctx, bad)
	require.NoError(t, err)
	b.waitState(t, bad.JobID, "failed")

	out, err := b.ctl.Retry(b.ctx, []string{bad.JobID}, "")
	require.NoError(t, err)
	require.Equal(t, []control.Outcome{{JobID: bad.JobID, Done: true}}, out)
	for {
		var failures int
		require.NoError(t, b.conn.QueryRow(b.ctx, `SELECT count(*) FROM job_events WHERE job_id = $1 AND to_state = 'failed'`, bad.JobID).Scan(&failures))
		if failures == 2 {
			break
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("second failure never recorded (%d)", failures)
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.waitState(t, bad.JobID, "failed")
	require.Equal(t, 2, b.calls(bad.JobID))
}
