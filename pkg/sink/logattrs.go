package sink

import (
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"
)

// msgJobAttrs names the job a message is about, for log lines: the ids its
// JSON holds (a claim-check reference keeps them), read even when it does
// not decode as an event, so that a dead letter can be traced to its job.
func msgJobAttrs(m jetstream.Msg) []any {
	var ids struct {
		JobID           string `json:"job_id"`
		RequestID       string `json:"request_id"`
		TranscriptionID string `json:"transcription_id"`
	}
	_ = json.Unmarshal(m.Data(), &ids)
	return []any{"job_id", ids.JobID, "request_id", ids.RequestID, "transcription_id", ids.TranscriptionID}
}
