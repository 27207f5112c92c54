package elevenlabs_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

const singleTranscription = `{"language_code":"en","language_probability":0.98,"text":"Hello world",` +
	`"words":[{"text":"Hello","start":0,"end":0.5,"type":"word","logprob":-0.1}],"transcription_id":"tr_1"}`

// webhookBody builds an STT webhook; metadata is the raw JSON of
// data.webhook_metadata, or "" to leave the key out.
func webhookBody(metadata string) []byte {
	md := ""
	if metadata != "" {
		md = `"webhook_metadata":` + metadata + `,`
	}
	return []byte(`{"type":"speech_to_text_transcription","event_timestamp":1700000000,"data":{` +
		`"request_id":"req_1",` + md + `"transcription":` + singleTranscription + `}}`)
}

func TestParseWebhookMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		metadata    string
		wantMD      string // "" = nil
		wantInvalid string // "" = nil
	}{
		{name: "Object", metadata: `{"job_id":"j1","attempt_id":"a1"}`, wantMD: `{"job_id":"j1","attempt_id":"a1"}`},
		{name: "JSONString", metadata: `"{\"job_id\":\"j1\"}"`, wantMD: `{"job_id":"j1"}`},
		{name: "Null", metadata: `null`},
		{name: "Absent", metadata: ""},
		{name: "StringHoldingNull", metadata: `"null"`},
		{name: "StringNotJSON", metadata: `"job j1"`, wantInvalid: `"job j1"`},
		{name: "Array", metadata: `[1,2]`, wantInvalid: `[1,2]`},
		{name: "Number", metadata: `42`, wantInvalid: `42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := elevenlabs.ParseWebhook(webhookBody(tt.metadata))
			// Never lose a delivered transcript over its metadata.
			require.NoError(t, err)
			require.Equal(t, "req_1", w.Data.RequestID)
			require.JSONEq(t, singleTranscription, string(w.Data.Transcription))
			if tt.wantMD == "" {
				require.Nil(t, w.Data.WebhookMetadata)
			} else {
				require.JSONEq(t, tt.wantMD, string(w.Data.WebhookMetadata))
				require.Equal(t, "j1", elevenlabs.MetadataString(w.Data.WebhookMetadata, "job_id"))
			}
			if tt.wantInvalid == "" {
				require.Nil(t, w.Data.InvalidMetadata)
			} else {
				require.Equal(t, tt.wantInvalid, string(w.Data.InvalidMetadata))
			}
		})
	}
}

func TestParseWebhookRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{name: "NotJSON", body: `<html>`},
		{name: "MissingType", body: `{"data":{"request_id":"r","transcription":{}}}`},
		{name: "MissingRequestID", body: `{"type":"speech_to_text_transcription","data":{"transcription":{}}}`},
		{name: "TranscriptionMissing", body: `{"type":"speech_to_text_transcription","data":{"request_id":"r"}}`},
		{name: "TranscriptionNotObject", body: `{"type":"speech_to_text_transcription","data":{"request_id":"r","transcription":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := elevenlabs.ParseWebhook([]byte(tt.body))
			require.ErrorIs(t, err, elevenlabs.ErrMalformedWebhook)
		})
	}
}

func TestParseWebhookOtherType(t *testing.T) {
	t.Parallel()
	_, err := elevenlabs.ParseWebhook([]byte(`{"type":"post_call_transcription","data":{"request_id":"r","transcription":{}}}`))
	require.ErrorIs(t, err, elevenlabs.ErrOtherWebhookType)
	require.NotErrorIs(t, err, elevenlabs.ErrMalformedWebhook)
}

func TestParseWebhookMultichannel(t *testing.T) {
	t.Parallel()
	body := `{"type":"speech_to_text_transcription","event_timestamp":1700000001,"data":{"request_id":"req_2",` +
		`"webhook_metadata":{"job_id":"j2"},"transcription":` + multichannelSeparate + `}}`
	w, err := elevenlabs.ParseWebhook([]byte(body))
	require.NoError(t, err)
	require.Equal(t, int64(1700000001), w.EventTimestamp)
	require.Equal(t, "j2", elevenlabs.MetadataString(w.Data.WebhookMetadata, "job_id"))

	tr, err := elevenlabs.ParseTranscript(w.Data.Transcription)
	require.NoError(t, err)
	require.Equal(t, 2, tr.Channels)
	require.Equal(t, "tr_multi", tr.TranscriptionID)
	require.Equal(t, "Hello agent\nHi customer", tr.Text)
}

func TestMetadataString(t *testing.T) {
	t.Parallel()
	md := json.RawMessage(`{"job_id":"j1","n":3}`)
	require.Equal(t, "j1", elevenlabs.MetadataString(md, "job_id"))
	require.Empty(t, elevenlabs.MetadataString(md, "n"), "not a string")
	require.Empty(t, elevenlabs.MetadataString(md, "missing"))
	require.Empty(t, elevenlabs.MetadataString(nil, "job_id"))
}
