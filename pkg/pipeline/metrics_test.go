package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/pipeline"
)

// `scribeq dev` serves every worker's metrics on the ingress's port.
func TestMetricsOfTheWholePipeline(t *testing.T) {
	t.Parallel()
	const files = 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbURL := pgtest.NewDB(t)
	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort: -1, DataDir: t.TempDir(), DatabaseURL: dbURL,
		IngressAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", EmulatorDelay: 10 * time.Millisecond,
		MaxConcurrent: 5, Metrics: metrics.NewRegistry(metrics.WithCacheTTL(0)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	require.NotEmpty(t, p.MetricsURL)

	dir := t.TempDir()
	for i := range files {
		samples := make([]int16, 16000*(i+1))
		for j := range samples {
			samples[j] = int16(j%2000 - 1000)
		}
		var buf bytes.Buffer
		require.NoError(t, audio.WriteWAV(&buf, 16000, samples, ""))
		require.NoError(t, os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".wav"), buf.Bytes(), 0o644))
	}
	_, err = intake.New(p.Queue, nil).Submit(ctx, intake.Request{Sources: []string{dir}, Options: event.Options{}}, nil)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	waitFor(t, ctx, func() bool {
		var done int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE state = 'completed'`).Scan(&done))
		return done == files
	})
	waitFor(t, ctx, func() bool {
		v, _ := metricstest.Sum(t, metricstest.Scrape(t, p.MetricsURL), "scribeq_job_transitions_total", "to", "completed")
		return v == files
	})
	g := metricstest.Scrape(t, p.MetricsURL)
	require.Equal(t, float64(files), metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "queued", "to", "submitted"))
	require.Equal(t, float64(files), metricstest.Value(t, g, "scribeq_webhook_deliveries_total", "outcome", "ok"))
	require.Equal(t, float64(files), metricstest.Value(t, g, "scribeq_submitter_convert_duration_seconds", "outcome", "accepted"))
	require.Equal(t, 6.0, metricstest.Value(t, g, "scribeq_submitter_accepted_audio_seconds_total"), "1 + 2 + 3 seconds")
	require.Positive(t, metricstest.Value(t, g, "scribeq_estimated_cost_total", "currency", "USD"))
	for _, c := range [][]string{{"stream", "JOBS", "consumer", "submitter"}, {"stream", "EVENTS", "consumer", "sink"}} {
		require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_consumer_info_up", c...), c)
		require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_consumer_pending_messages", c...), c)
	}
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_slots_in_use"), "every slot freed by its webhook")
	require.Equal(t, 5.0, metricstest.Value(t, g, "scribeq_slots_limit"))
}
