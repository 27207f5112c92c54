package elevenlabs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// WebhookType is the envelope type of a speech-to-text result.
const WebhookType = "speech_to_text_transcription"

// Webhook is the envelope ElevenLabs POSTs when an async transcription is done.
type Webhook struct {
	Type           string      `json:"type"`
	EventTimestamp int64       `json:"event_timestamp"`
	Data           WebhookData `json:"data"`
}

// WebhookData is the payload of a speech-to-text webhook.
type WebhookData struct {
	RequestID string `json:"request_id"`
	// WebhookMetadata is what we sent as webhook_metadata, normalised to a
	// JSON object (ElevenLabs delivers it as an object or as a JSON string).
	// Nil when absent, null, or not an object (see InvalidMetadata).
	WebhookMetadata json.RawMessage `json:"webhook_metadata"`
	// InvalidMetadata holds webhook_metadata as delivered when it was not an
	// object (nor a JSON string holding one), for logging. Such a webhook is
	// still accepted: ElevenLabs never redelivers an STT webhook, so
	// rejecting it would lose the transcript, and the job can still be found
	// by request_id.
	InvalidMetadata json.RawMessage `json:"-"`
	// Transcription is the result: single-channel or multichannel, kept as
	// raw JSON so nothing is lost; see ParseTranscript.
	Transcription json.RawMessage `json:"transcription"`
}

// ErrMalformedWebhook wraps every reason ParseWebhook rejects a body.
var ErrMalformedWebhook = errors.New("malformed webhook")

// ErrOtherWebhookType means a well-formed envelope of another event type
// (a workspace webhook may be subscribed to more than speech-to-text).
var ErrOtherWebhookType = errors.New("not a speech-to-text webhook")

// ParseWebhook decodes a (verified) webhook body. It rejects, wrapping
// ErrMalformedWebhook, bodies that are not JSON, without data.request_id, or
// whose data.transcription is not an object; an envelope of another type
// gives ErrOtherWebhookType.
func ParseWebhook(body []byte) (*Webhook, error) {
	var w Webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedWebhook, err)
	}
	if w.Type == "" {
		return nil, fmt.Errorf("%w: type is missing", ErrMalformedWebhook)
	}
	if w.Type != WebhookType {
		return nil, fmt.Errorf("%w: type %q", ErrOtherWebhookType, w.Type)
	}
	if w.Data.RequestID == "" {
		return nil, fmt.Errorf("%w: data.request_id is missing", ErrMalformedWebhook)
	}
	if t := bytes.TrimSpace(w.Data.Transcription); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: data.transcription is not an object", ErrMalformedWebhook)
	}
	md, err := normaliseMetadata(w.Data.WebhookMetadata)
	if err != nil {
		w.Data.InvalidMetadata = w.Data.WebhookMetadata
		md = nil
	}
	w.Data.WebhookMetadata = md
	return &w, nil
}

// normaliseMetadata turns an object, a JSON string holding an object, or
// null into the object's bytes (nil for null or absent).
func normaliseMetadata(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) == 0 || bytes.Equal(inner, []byte("null")) {
			return nil, nil
		}
		raw = inner
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, errors.New("not a JSON object")
	}
	return raw, nil
}

// MetadataString returns the string value of key in normalised metadata, or
// "" when absent or not a string.
func MetadataString(md json.RawMessage, key string) string {
	if len(md) == 0 {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(md, &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return s
}
