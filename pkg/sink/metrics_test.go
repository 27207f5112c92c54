package sink_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/sink"
)

// Committed batches are measured, applied events counted by type, and a
// poison event counted as a dead letter.
func TestMetricsFollowCommits(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	b := setupWith(t, sink.Config{MaxAttempts: 3, Metrics: reg.Sink()})
	ctx, q := b.ctx, b.q

	at := time.Now().UTC()
	for _, e := range []*event.Event{
		{Type: event.TypeQueued, JobID: "m1", Job: job("m1"), At: at},
		{Type: event.TypeSubmitted, JobID: "m1", RequestID: "rm1", TranscriptionID: "tm1", At: at.Add(time.Second)},
	} {
		require.NoError(t, q.PublishEvent(ctx, e))
	}
	_, err := q.JS.Publish(ctx, event.TypeFailed.Subject(), []byte(`{"v":1,"type":"failed"}`)) // no job_id: poison
	require.NoError(t, err)

	g := reg.Gatherer()
	require.Eventually(t, func() bool {
		v, _ := metricstest.Sum(t, g, "scribeq_dead_letters_total", "stream", event.StreamEvents)
		return v == 1 && metricstest.Value(t, g, "scribeq_sink_events_total", "type", "submitted") == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, metricstest.Value(t, g, "scribeq_sink_events_total", "type", "queued"))
	batches := metricstest.Value(t, g, "scribeq_sink_batch_size")
	require.GreaterOrEqual(t, batches, 1.0)
	require.Equal(t, batches, metricstest.Value(t, g, "scribeq_sink_commit_duration_seconds"))

	var state string
	require.NoError(t, b.conn.QueryRow(ctx, `SELECT state FROM jobs WHERE job_id = 'm1'`).Scan(&state))
	require.Equal(t, "submitted", state)
}
