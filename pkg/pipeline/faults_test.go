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

// runWithFaults sends n files through a pipeline whose emulator injects
// faults, waits until every job is terminal and returns the figures.
func runWithFaults(t *testing.T, n int, cfg pipeline.Config) (*pipeline.Pipeline, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cfg.DatabaseURL = pgtest.NewDB(t)
	cfg.NatsPort, cfg.DataDir = -1, t.TempDir()
	cfg.IngressAddr, cfg.EmulatorAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.EmulatorSeed = 7
	p, err := pipeline.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		samples := make([]int16, 4000)
		for j := range samples {
			samples[j] = int16(rng.IntN(2000) - 1000)
		}
		var buf bytes.Buffer
		require.NoError(t, audio.WriteWAV(&buf, 16000, samples, ""))
		require.NoError(t, os.WriteFile(filepath.Join(dir, string(rune('a'+i%26))+string(rune('a'+i/26))+".wav"), buf.Bytes(), 0o644))
	}
	res, err := intake.New(p.Queue, nil).Submit(ctx, intake.Request{Sources: []string{dir}, Options: event.Options{}}, nil)
	require.NoError(t, err)
	require.Len(t, res, n)

	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	waitFor(t, ctx, func() bool {
		var done int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state IN ('completed','failed')`).Scan(&done))
		return done == n
	})
	return p, conn
}

func requireEachCompletedOnce(t *testing.T, p *pipeline.Pipeline, conn *pgx.Conn, n int) {
	t.Helper()
	ctx := context.Background()
	var completed, transcripts, linked int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state = 'completed'`).Scan(&completed))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(job_id) FROM transcripts`).Scan(&transcripts, &linked))
	require.Equal(t, n, completed, "every job completed")
	require.Equal(t, n, transcripts, "one transcript per job")
	require.Equal(t, n, linked, "every transcript linked to its job")
	for job, c := range p.Emulator.Jobs() {
		require.Equal(t, 1, c.Accepted, "job %s billed once", job)
	}
}

// Webhooks that are lost, lost answers, duplicates, webhooks before the
// convert answer, metadata as a string, 5xx and both kinds of 429: every
// job still completes once and is billed once.
func TestFaultyProvider(t *testing.T) {
	t.Parallel()
	const n = 24
	p, conn := runWithFaults(t, n, pipeline.Config{
		EmulatorDelay: 20 * time.Millisecond,
		Concurrency:   6,
		MaxConcurrent: 4,
		InDoubtGrace:  time.Hour, // a lost answer must be settled by its webhook, never by a second call
		EmulatorFaults: emulator.Faults{
			Status:            map[int]float64{500: 0.1, 503: 0.05},
			TooManyConcurrent: 0.1,
			SystemBusy:        0.05,
			RetryAfter:        50 * time.Millisecond,
			ResetAfterAccept:  0.15,
			WebhookFirst:      0.2,
			DuplicateWebhooks: 0.3,
			MetadataAsString:  0.5,
			ReorderWebhooks:   0.3,
			ReorderJitter:     100 * time.Millisecond,
		},
	})
	requireEachCompletedOnce(t, p, conn, n)
	st := p.Emulator.Stats()
	t.Logf("emulator: %+v", st)
}

// ElevenLabs sends each webhook once; the ones that never arrive are
// recovered by the reconciler polling GET transcript.
func TestDroppedWebhooksAreRecovered(t *testing.T) {
	t.Parallel()
	const n = 10
	p, conn := runWithFaults(t, n, pipeline.Config{
		EmulatorDelay:     10 * time.Millisecond,
		EmulatorFaults:    emulator.Faults{DropWebhooks: 0.5},
		ReconcileInterval: 200 * time.Millisecond,
		ReconcileMinAge:   time.Second,
	})
	requireEachCompletedOnce(t, p, conn, n)
	var recovered int
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT count(*) FROM job_events WHERE to_state = 'completed' AND process = 'reconciler'`).Scan(&recovered))
	require.Positive(t, recovered, "some jobs were completed by the reconciler")
}
