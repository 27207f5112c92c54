package pipeline_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/pipeline"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestEndToEnd sends real files through every part with real NATS, real
// Postgres and real HTTP between emulator and ingress.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	const files = 30
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dbURL := pgtest.NewDB(t)

	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort:      -1,
		DataDir:       t.TempDir(),
		DatabaseURL:   dbURL,
		IngressAddr:   "127.0.0.1:0",
		EmulatorAddr:  "127.0.0.1:0",
		EmulatorDelay: 10 * time.Millisecond,
		Concurrency:   8,
		// Below Concurrency, so the shared limit is what paces the calls;
		// slots come back only through the ingress's webhook marks.
		MaxConcurrent: 5,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	dir := t.TempDir()
	want := map[string]string{} // path -> expected text
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range files {
		samples := make([]int16, 8000+rng.IntN(16000))
		for j := range samples {
			samples[j] = int16(rng.IntN(2000) - 1000)
		}
		var buf bytes.Buffer
		require.NoError(t, audio.WriteWAV(&buf, 16000, samples, ""))
		path := filepath.Join(dir, "rec", filepath.Base(t.Name())+"-"+string(rune('a'+i%26))+string(rune('a'+i/26))+".wav")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		want[path] = emulator.TranscriptText(buf.Bytes())
	}
	// A file that is not audio is reported, not sent.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rec", "notes.txt"), []byte("hello"), 0o644))

	in := intake.New(p.Queue, nil)
	started := time.Now()
	res, err := in.Submit(ctx, intake.Request{Sources: []string{filepath.Join(dir, "rec")}, Options: event.Options{Diarize: true}}, nil)
	require.NoError(t, err)
	var queued, skipped int
	for _, r := range res {
		switch r.Status {
		case intake.Queued:
			queued++
		case intake.Skipped:
			skipped++
		default:
			t.Fatalf("unexpected result %+v", r)
		}
	}
	require.Equal(t, files, queued)
	require.Equal(t, 1, skipped)

	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	waitFor(t, ctx, func() bool {
		var done int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state = 'completed'`).Scan(&done))
		return done == files
	})
	elapsed := time.Since(started)
	t.Logf("%d jobs end to end in %s (%.1f jobs/s)", files, elapsed.Round(time.Millisecond), float64(files)/elapsed.Seconds())

	// Every job completed exactly once, with the emulator's text.
	rows, err := conn.Query(ctx, `
		SELECT j.source->>'path', j.convert_calls, t.text, (SELECT count(*) FROM transcripts t2 WHERE t2.job_id = j.job_id)
		FROM jobs j JOIN transcripts t ON t.request_id = j.request_id`)
	require.NoError(t, err)
	seen := 0
	for rows.Next() {
		var path, text string
		var calls, transcripts int
		require.NoError(t, rows.Scan(&path, &calls, &text, &transcripts))
		require.Equal(t, want[path], text, path)
		require.Equal(t, 1, calls, path)
		require.Equal(t, 1, transcripts, path)
		seen++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, files, seen)
	require.Len(t, p.Emulator.Ledger(), files, "one convert call per job")

	// Submitting the same folder again queues nothing.
	res, err = in.Submit(ctx, intake.Request{Sources: []string{filepath.Join(dir, "rec")}, Options: event.Options{Diarize: true}}, nil)
	require.NoError(t, err)
	for _, r := range res {
		require.Contains(t, []intake.Status{intake.AlreadySubmitted, intake.Skipped}, r.Status, r.Source)
	}
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met before the deadline: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

// A job message nobody can decode ends in dead_letters (with its bytes),
// and a replay is recorded.
func TestUndecodableJobIsDeadLettered(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := pgtest.NewDB(t)
	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort: -1, DataDir: t.TempDir(), DatabaseURL: dbURL,
		IngressAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0",
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	garbage := []byte(`{"v":1,"job_id":"x","source":{}}`)
	require.NoError(t, p.Queue.PublishRaw(ctx, event.SubjectJobs, garbage, "garbage-1"))
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var id int64
	waitFor(t, ctx, func() bool {
		err := conn.QueryRow(ctx, `SELECT id FROM dead_letters WHERE stream = 'JOBS' AND data = $1`, garbage).Scan(&id)
		return err == nil
	})
	var reason string
	require.NoError(t, conn.QueryRow(ctx, `SELECT error FROM dead_letters WHERE id = $1`, id).Scan(&reason))
	require.Contains(t, reason, "exactly one of source.object and source.url")

	require.NoError(t, p.Queue.PublishEvent(ctx, &event.Event{Type: event.TypeReplayed, DeadLetter: &event.DeadLetter{ID: id}}))
	waitFor(t, ctx, func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE id = $1 AND replayed_at IS NOT NULL`, id).Scan(&n))
		return n == 1
	})
}
