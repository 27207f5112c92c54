package sink_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/sink"
	"github.com/scribeq/scribeq/pkg/store"
)

// A dead letter's log line names the job it was about, so an operator can
// go from the alert to the job.
func TestDeadLetterLogNamesTheJob(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, pgtest.NewDB(t), nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	q := natstest.Queue(t, queue.Config{})
	logs := logtest.New()
	snk, err := sink.New(q, st, sink.Config{MaxWait: 100 * time.Millisecond, MaxAttempts: 2, Logger: logs.Logger()})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- snk.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	require.NoError(t, q.PublishEvent(ctx, &event.Event{
		Type: event.TypeCompleted, JobID: "j-poison", RequestID: "r-poison", TranscriptionID: "tr-poison",
		Transcription: json.RawMessage(`{"text":5}`),
	}))
	require.Eventually(t, func() bool {
		return logs.Has(t, "event dead-lettered", "job_id", "j-poison", "request_id", "r-poison", "transcription_id", "tr-poison")
	}, 30*time.Second, 20*time.Millisecond, "%s", logs.String())
}
