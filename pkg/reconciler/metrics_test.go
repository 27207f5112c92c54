package reconciler_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/reconciler"
)

func TestMetricsCountEachRound(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	ctx := context.Background()
	stuck := b.convert(t, "j-stuck", "recovered by polling")
	b.submitted(t, "j-stuck", stuck.RequestID, stuck.TranscriptionID, 20*time.Minute, 0.5)
	b.submitted(t, "j-lost", "r-lost", "tr-unknown-lost", 3*time.Hour, 30)
	b.submitted(t, "j-notyet", "r-notyet", "tr-unknown-notyet", 30*time.Minute, 30)
	b.submitted(t, "j-noid", "r-noid", "", 30*time.Minute, 30)

	reg := metrics.NewRegistry()
	r := b.reconciler(t, b.api, reconciler.Config{UnhealthyRecovered: 1, Metrics: reg.Reconciler()})
	res, err := r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Recovered)

	g := reg.Gatherer()
	for outcome, want := range map[string]float64{
		metrics.RecoveryRecovered: 1, metrics.RecoveryLost: 1, metrics.RecoveryWaiting: 1,
		metrics.RecoveryMissingID: 1, metrics.RecoverySkipped: 0, metrics.RecoveryError: 0,
	} {
		require.Equal(t, want, metricstest.Value(t, g, "scribeq_reconciler_recoveries_total", "outcome", outcome), outcome)
	}
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "failed"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_rounds_total", "result", "ok"))
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_webhooks_unhealthy"))
	require.Equal(t, float64(b.now.Unix()), metricstest.Value(t, g, "scribeq_reconciler_last_round_timestamp_seconds"))

	// The next round skips what was just published: not counted again.
	_, err = r.Round(ctx)
	require.NoError(t, err)
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_job_transitions_total", "from", "submitted", "to", "completed"))
	require.Equal(t, 2.0, metricstest.Value(t, g, "scribeq_reconciler_recoveries_total", "outcome", metrics.RecoverySkipped))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_reconciler_webhooks_unhealthy"))
}

func TestMetricsCountAFailedRound(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	db, err := query.Open(context.Background(), b.url)
	require.NoError(t, err)
	db.Close() // every query now fails
	reg := metrics.NewRegistry()
	r, err := reconciler.New(db, b.q, b.api, reconciler.Config{Metrics: reg.Reconciler()})
	require.NoError(t, err)
	_, err = r.Round(context.Background())
	require.Error(t, err)
	g := reg.Gatherer()
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_reconciler_rounds_total", "result", "error"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_reconciler_rounds_total", "result", "ok"))
	require.Equal(t, 0.0, metricstest.Value(t, g, "scribeq_reconciler_last_round_timestamp_seconds"))
}
