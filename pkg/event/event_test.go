package event_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
)

func TestDecodeValidates(t *testing.T) {
	t.Parallel()
	job := &event.Job{V: 1, JobID: "j", Source: event.Source{Object: "o"}, Options: event.Options{Model: "scribe_v2"}}
	tests := []struct {
		name    string
		ev      event.Event
		wantErr string
	}{
		{"Queued", event.Event{V: 1, Type: event.TypeQueued, JobID: "j", Job: job}, ""},
		{"QueuedMismatch", event.Event{V: 1, Type: event.TypeQueued, JobID: "k", Job: job}, "does not match"},
		{"QueuedNoJob", event.Event{V: 1, Type: event.TypeQueued, JobID: "j"}, "missing job"},
		{"SubmittedNoRequest", event.Event{V: 1, Type: event.TypeSubmitted, JobID: "j"}, "request_id"},
		{"CompletedNoBody", event.Event{V: 1, Type: event.TypeCompleted, RequestID: "r"}, "transcription or payload_ref"},
		{"CompletedByRef", event.Event{V: 1, Type: event.TypeCompleted, RequestID: "r", PayloadRef: "x"}, ""},
		{"FailedNoJob", event.Event{V: 1, Type: event.TypeFailed}, "job_id"},
		{"UnknownType", event.Event{V: 1, Type: "exploded"}, "unknown type"},
		{"NoVersion", event.Event{Type: event.TypeFailed, JobID: "j"}, "version"},
		{"NewerVersionAccepted", event.Event{V: 7, Type: event.TypeFailed, JobID: "j"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.ev)
			require.NoError(t, err)
			_, err = event.Decode(b)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	t.Parallel()
	e, err := event.Decode([]byte(`{"v":2,"type":"failed","job_id":"j","error":"x","at":"2026-01-01T00:00:00Z","added_later":{"a":1}}`))
	require.NoError(t, err)
	require.Equal(t, "x", e.Error)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), e.At)
}

func TestMsgIDs(t *testing.T) {
	t.Parallel()
	require.Equal(t, "r1:completed", (&event.Event{Type: event.TypeCompleted, JobID: "j", RequestID: "r1"}).MsgID())
	require.Equal(t, "j:submitted", (&event.Event{Type: event.TypeSubmitted, JobID: "j", RequestID: "r1"}).MsgID())
	require.Equal(t, "stt.events.queued", event.TypeQueued.Subject())
}

func TestJobValidate(t *testing.T) {
	t.Parallel()
	_, err := event.DecodeJob([]byte(`{"v":1,"job_id":"j","source":{"object":"o","url":"https://x"},"options":{"model":"scribe_v2"}}`))
	require.ErrorContains(t, err, "exactly one")
	_, err = event.DecodeJob([]byte(`{"v":1,"job_id":"j","source":{"url":"https://x"},"options":{}}`))
	require.ErrorContains(t, err, "model")
	j, err := event.DecodeJob([]byte(`{"v":1,"job_id":"j","source":{"url":"https://x"},"options":{"model":"scribe_v1"}}`))
	require.NoError(t, err)
	require.Equal(t, "https://x", j.Source.URL)
}
