package elevenlabs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// FuzzVerify: no header, however malformed, panics the verifier or passes
// without the secret; a header we sign always passes.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"speech_to_text_transcription"}`)
	f.Add(elevenlabs.Sign("secret", now, body), body)
	f.Add("t=1700000000,v0=zz,v1=00", body)
	f.Add("t=,v0=", []byte{})
	f.Add(",,,t=1700000000 , v0=abc", []byte("x"))
	f.Add("v0="+elevenlabs.Sign("secret", now, body)[13:], body)
	v := &elevenlabs.Verifier{Secrets: []string{"secret"}, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := v.Verify(header, body)
		if err == nil && header != elevenlabs.Sign("secret", now, body) {
			// Only a v0 that is the HMAC of this body under our secret may pass;
			// extra parts around it are allowed.
			good := elevenlabs.Sign("secret", now, body)
			if !containsV0(header, good[len("t=1700000000,"):]) {
				t.Fatalf("accepted a header without our signature: %q", header)
			}
		}
		if err := v.Verify(elevenlabs.Sign("secret", now, body), body); err != nil {
			t.Fatalf("rejected our own signature: %v", err)
		}
	})
}

// containsV0 reports whether header carries v0 (hex is case-insensitive:
// the same bytes in capitals are the same signature).
func containsV0(header, v0 string) bool {
	return strings.Contains(strings.ToLower(header), strings.ToLower(v0))
}

// FuzzParseWebhook: any signed body either parses into a webhook with a
// request id and an object transcription, or is refused; never a panic.
func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"type":"speech_to_text_transcription","data":{"request_id":"r","webhook_metadata":"{\"job_id\":\"j\"}","transcription":{"text":"hi"}}}`))
	f.Add([]byte(`{"type":"speech_to_text_transcription","data":{"request_id":"r","webhook_metadata":{"job_id":1},"transcription":{"transcripts":[]}}}`))
	f.Add([]byte(`{"type":"x"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := elevenlabs.ParseWebhook(body)
		if err != nil {
			return
		}
		if w.Data.RequestID == "" || len(w.Data.Transcription) == 0 || w.Data.Transcription[0] != '{' {
			t.Fatalf("accepted an incomplete webhook: %s", body)
		}
		_, _ = elevenlabs.ParseTranscript(w.Data.Transcription)
		_ = elevenlabs.MetadataString(w.Data.WebhookMetadata, "job_id")
	})
}
