package sink_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/sink"
)

// A dead letter's log line names the job it was about, so an operator can
// go from the alert to the job.
func TestDeadLetterLogNamesTheJob(t *testing.T) {
	t.Parallel()
	logs := logtest.New()
	b := setupWith(t, sink.Config{MaxAttempts: 2, Logger: logs.Logger()})
	ctx, q := b.ctx, b.q

	require.NoError(t, q.PublishEvent(ctx, &event.Event{
		Type: event.TypeCompleted, JobID: "j-poison", RequestID: "r-poison", TranscriptionID: "tr-poison",
		Transcription: json.RawMessage(`{"text":5}`),
	}))
	require.Eventually(t, func() bool {
		return logs.Has(t, "event dead-lettered", "job_id", "j-poison", "request_id", "r-poison", "transcription_id", "tr-poison")
	}, 30*time.Second, 20*time.Millisecond, "%s", logs.String())
}
