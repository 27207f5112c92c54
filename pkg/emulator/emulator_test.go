package emulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  emulator.Config
		want string
	}{
		{name: "WebhookURLWithoutSecret", cfg: emulator.Config{WebhookURL: "http://127.0.0.1:1/x"}, want: "WebhookSecret"},
		{name: "WebhookURLNotHTTP", cfg: emulator.Config{WebhookURL: "ftp://x/y", WebhookSecret: "s"}, want: "WebhookURL"},
		{name: "NegativeDelay", cfg: emulator.Config{WebhookDelay: -time.Second}, want: "WebhookDelay"},
		{name: "NegativeRate", cfg: emulator.Config{SecondsPerAudioSecond: -1}, want: "SecondsPerAudioSecond"},
		{name: "EmptyKey", cfg: emulator.Config{APIKeys: []string{"a", ""}}, want: "APIKeys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := emulator.New(tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := emulator.New(emulator.Config{WebhookURL: "http://127.0.0.1:1/x", WebhookSecret: "s"})
	require.NoError(t, err)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	em, url := start(t, emulator.Config{APIKeys: []string{testKey, "sk_other"}})
	fields := []field{{"model_id", "scribe_v2"}}
	file := filePart{"file", wav(t, 0.5, "", 1)}

	resp, body := postForm(t, url, "", "", fields, file)
	requireAPIError(t, resp, body, http.StatusUnauthorized, "authentication_error", "needs_authorization", "")

	resp, body = postForm(t, url, "sk_wrong", "", fields, file)
	requireAPIError(t, resp, body, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "")
	require.NotContains(t, string(body), "sk_wrong", "the key is never echoed")

	resp, body = postForm(t, url, "sk_other", "", fields, file)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	// Transcript routes need the key too.
	resp, body = do(t, http.MethodGet, url+"/v1/speech-to-text/transcripts/abc", "", "", nil)
	requireAPIError(t, resp, body, http.StatusUnauthorized, "authentication_error", "needs_authorization", "")
	resp, body = do(t, http.MethodDelete, url+"/v1/speech-to-text/transcripts/abc", "bad", "", nil)
	requireAPIError(t, resp, body, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "")

	// Refused calls are in the ledger with their status.
	calls := em.Ledger()
	require.Len(t, calls, 3)
	require.Equal(t, []int{401, 401, 200}, []int{calls[0].Status, calls[1].Status, calls[2].Status})
	require.Equal(t, "invalid_api_key", calls[1].Error)
}

func TestAnyKeyWhenNoneConfigured(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	resp, body := postForm(t, url, "anything", "", []field{{"model_id", "scribe_v1"}}, filePart{"file", []byte("x")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = postForm(t, url, "", "", []field{{"model_id", "scribe_v1"}}, filePart{"file", []byte("x")})
	requireAPIError(t, resp, body, http.StatusUnauthorized, "authentication_error", "needs_authorization", "")
}

func TestWebhookDeliveredOnceAndVerifies(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	audioBytes := wav(t, 2, "", 7)
	metadata := map[string]any{"job_id": "job-123", "attempt": 2, "tags": map[string]any{"a": "b"}}

	resp, err := client(t, url).Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(audioBytes), FileName: "x.wav", FileSize: int64(len(audioBytes)),
		Webhook: true, WebhookMetadata: metadata,
	})
	require.NoError(t, err)
	require.Equal(t, "Request processed successfully", resp.Message)
	require.Regexp(t, requestIDPattern, resp.RequestID)
	require.Equal(t, resp.RequestID, resp.RequestIDHeader)
	require.Len(t, resp.TranscriptionID, 20)
	require.JSONEq(t, `{"message":"Request processed successfully","request_id":"`+resp.RequestID+
		`","transcription_id":"`+resp.TranscriptionID+`"}`, string(resp.Raw))

	waitFor(t, "the webhook", func() bool { return len(rc.deliveries()) > 0 })
	// Close waits for every delivery, so the count is final afterwards.
	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 1, "delivered exactly once")
	d := got[0]

	require.Equal(t, "application/json", d.header.Get("Content-Type"))
	sig := d.header.Get("ElevenLabs-Signature")
	require.Regexp(t, `^t=\d+,v0=[0-9a-f]{64}$`, sig)
	v := &elevenlabs.Verifier{Secrets: []string{testSecret}}
	require.NoError(t, v.Verify(sig, d.body))
	require.ErrorIs(t, (&elevenlabs.Verifier{Secrets: []string{"other"}}).Verify(sig, d.body), elevenlabs.ErrSignatureInvalid)
	event, err := sdkConstructEvent(d.body, sig, testSecret, time.Now())
	require.NoError(t, err, "the official SDKs' constructEvent accepts it")
	require.Equal(t, "speech_to_text_transcription", event["type"])
	require.Equal(t, strings.TrimPrefix(strings.Split(sig, ",")[0], "t="),
		jsonNumber(t, event["event_timestamp"]), "event_timestamp is the signed t")

	wh, err := elevenlabs.ParseWebhook(d.body)
	require.NoError(t, err)
	require.Equal(t, resp.RequestID, wh.Data.RequestID)
	require.JSONEq(t, `{"job_id":"job-123","attempt":2,"tags":{"a":"b"}}`, string(wh.Data.WebhookMetadata))
	require.Nil(t, wh.Data.InvalidMetadata, "metadata is echoed as an object")
	tr, err := elevenlabs.ParseTranscript(wh.Data.Transcription)
	require.NoError(t, err)
	require.Equal(t, emulator.TranscriptText(audioBytes), tr.Text)
	require.Equal(t, resp.TranscriptionID, tr.TranscriptionID)
	require.InDelta(t, 2.0, *tr.AudioDurationSecs, 1e-9)
	requireWellFormed(t, decodeChunk(t, wh.Data.Transcription))

	calls := em.Ledger()
	require.Len(t, calls, 1)
	c := calls[0]
	require.Equal(t, "job-123", c.JobID)
	require.Equal(t, resp.RequestID, c.RequestID)
	require.Equal(t, resp.TranscriptionID, c.TranscriptionID)
	require.Equal(t, http.StatusOK, c.Status)
	require.True(t, c.Webhook)
	require.Equal(t, "delivered", c.Delivery)
	require.Equal(t, http.StatusOK, c.DeliveryStatus)
	sum := sha256.Sum256(audioBytes)
	require.Equal(t, hex.EncodeToString(sum[:]), c.SHA256)
	require.Equal(t, int64(len(audioBytes)), c.Bytes)

	// The transcript is retrievable by transcription_id afterwards.
	raw, err := client(t, url).GetTranscript(t.Context(), resp.TranscriptionID)
	require.NoError(t, err)
	require.JSONEq(t, string(wh.Data.Transcription), string(raw))
}

func jsonNumber(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestWebhookMetadataSentAsJSONString(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	// Double encoded: a JSON string that holds the object.
	resp, body := postForm(t, url, testKey, "", []field{
		{"model_id", "scribe_v2"}, {"webhook", "true"}, {"webhook_metadata", `"{\"job_id\":\"j-str\"}"`},
	}, filePart{"file", []byte("not a wav")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 1)
	var env struct {
		Data struct {
			WebhookMetadata json.RawMessage `json:"webhook_metadata"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got[0].body, &env))
	require.JSONEq(t, `{"job_id":"j-str"}`, string(env.Data.WebhookMetadata))
	require.Equal(t, "j-str", em.Ledger()[0].JobID)
}

func TestWebhookWithoutMetadataSendsNull(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v1"}, {"webhook", "true"}},
		filePart{"file", []byte("bytes")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 1)
	require.Contains(t, string(got[0].body), `"webhook_metadata":null`)
	wh, err := elevenlabs.ParseWebhook(got[0].body)
	require.NoError(t, err)
	require.Nil(t, wh.Data.WebhookMetadata)
}

func TestWebhookNotRetried(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusInternalServerError)
	em, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"webhook", "true"}},
		filePart{"file", wav(t, 1, "", 2)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NoError(t, em.Close(t.Context()))
	require.Len(t, rc.deliveries(), 1, "a failed STT webhook is gone: no retry")
	c := em.Ledger()[0]
	require.Equal(t, "failed", c.Delivery)
	require.Equal(t, http.StatusInternalServerError, c.DeliveryStatus)
}

func TestWebhookReceiverDown(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := start(t, emulator.Config{WebhookURL: "http://127.0.0.1:1/nothing-listens", WebhookSecret: testSecret})
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"webhook", "true"}},
		filePart{"file", []byte("abc")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NoError(t, em.Close(t.Context()))
	c := em.Ledger()[0]
	require.Equal(t, "failed", c.Delivery)
	require.NotEmpty(t, c.DeliveryError)
	require.Empty(t, rc.deliveries())
}

func TestSyncTranscript(t *testing.T) {
	t.Parallel()
	em, url := start(t, emulator.Config{})
	audioBytes := wav(t, 4, "", 3)
	resp, err := client(t, url).Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(audioBytes), FileName: "a.wav", FileSize: int64(len(audioBytes)),
	})
	require.NoError(t, err)
	c := decodeChunk(t, resp.Raw)
	require.Equal(t, emulator.TranscriptText(audioBytes), c.Text)
	require.Equal(t, "eng", c.LanguageCode)
	require.InDelta(t, 0.98, c.LanguageProbability, 0.02)
	require.InDelta(t, 4.0, c.AudioDurationSecs, 1e-9)
	require.Len(t, c.TranscriptionID, 20)
	// About 2.5 words per second.
	require.Len(t, strings.Fields(c.Text), 10)
	requireWellFormed(t, c)
	for _, w := range c.Words {
		require.Equal(t, "speaker_0", w.SpeakerID, "one speaker without diarize")
		require.Empty(t, w.Characters)
	}
	require.False(t, em.Ledger()[0].Webhook)
	require.Empty(t, em.Ledger()[0].Delivery)

	// Sync mode needs no webhook configured, and the result is the same
	// for the same bytes.
	again, err := client(t, url).Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v1", File: bytes.NewReader(audioBytes), FileSize: int64(len(audioBytes)),
	})
	require.NoError(t, err)
	require.Equal(t, c.Text, decodeChunk(t, again.Raw).Text)
}

func TestSyncOptionsShapeTranscript(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	// Three sentences, so diarization alternates speakers 0, 1, 0.
	text := "First one here. Then a second. And the third sentence ends it."
	audioBytes := wav(t, 3, text, 4)

	resp, body := postForm(t, url, testKey, "", []field{
		{"model_id", "scribe_v2"}, {"diarize", "true"}, {"timestamps_granularity", "character"}, {"language_code", "de"},
	}, filePart{"file", audioBytes})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	c := decodeChunk(t, body)
	require.Equal(t, text, c.Text)
	require.Equal(t, "de", c.LanguageCode, "the requested language is echoed")
	requireWellFormed(t, c)
	speakers := map[string]string{}
	for _, w := range c.Words {
		if w.Type == "word" {
			speakers[w.Text] = w.SpeakerID
			require.Len(t, w.Characters, len([]rune(w.Text)))
			require.InDelta(t, *w.Start, w.Characters[0].Start, 1e-9)
			require.InDelta(t, *w.End, w.Characters[len(w.Characters)-1].End, 1e-9)
		}
	}
	require.Equal(t, "speaker_0", speakers["First"])
	require.Equal(t, "speaker_0", speakers["here."])
	require.Equal(t, "speaker_1", speakers["Then"])
	require.Equal(t, "speaker_1", speakers["second."])
	require.Equal(t, "speaker_0", speakers["third"])

	resp, body = postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"timestamps_granularity", "none"}},
		filePart{"file", audioBytes})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	c = decodeChunk(t, body)
	require.Equal(t, text, c.Text, "options never change the text")
	for _, w := range c.Words {
		require.Nil(t, w.Start)
		require.Nil(t, w.End)
	}
}

func TestSourceURLTranscriptIsSeededByURL(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	get := func(src string) chunk {
		resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", src}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		return decodeChunk(t, body)
	}
	a, b, other := get("https://example.com/a.mp3"), get("https://example.com/a.mp3"), get("https://example.com/b.mp3")
	require.Equal(t, a.Text, b.Text)
	require.NotEqual(t, a.Text, other.Text)
	require.InDelta(t, 10.0, a.AudioDurationSecs, 1e-9, "unknown duration counts as 10 s")
	require.Len(t, strings.Fields(a.Text), 25)
	requireWellFormed(t, a)

	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"cloud_storage_url", "https://bucket.example.com/x.wav"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}

func TestTranscriptText(t *testing.T) {
	t.Parallel()
	// A comment is the text, whitespace collapsed.
	require.Equal(t, "Hello there, world.", emulator.TranscriptText(wav(t, 1, "  Hello\tthere,\n world. ", 1)))
	// Pseudo-words: deterministic, about 2.5 per second, at least 3, sentences.
	a := emulator.TranscriptText(wav(t, 8, "", 1))
	require.Equal(t, a, emulator.TranscriptText(wav(t, 8, "", 1)))
	require.NotEqual(t, a, emulator.TranscriptText(wav(t, 8, "", 2)))
	require.Len(t, strings.Fields(a), 20)
	require.True(t, strings.HasSuffix(a, "."))
	require.Equal(t, strings.ToUpper(a[:1]), a[:1])
	require.Len(t, strings.Fields(emulator.TranscriptText(wav(t, 0.1, "", 1))), 3)
	require.Len(t, strings.Fields(emulator.TranscriptText([]byte("an mp3, say"))), 25, "not a WAV: 10 s")
}

func TestGetAndDeleteTranscript(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	c := client(t, url)
	audioBytes := wav(t, 1, "Keep this one.", 5)
	resp, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(audioBytes), FileSize: int64(len(audioBytes)),
	})
	require.NoError(t, err)
	id := decodeChunk(t, resp.Raw).TranscriptionID

	raw, err := c.GetTranscript(t.Context(), id)
	require.NoError(t, err)
	require.JSONEq(t, string(resp.Raw), string(raw))

	require.NoError(t, c.DeleteTranscript(t.Context(), id))
	_, err = c.GetTranscript(t.Context(), id)
	require.ErrorIs(t, err, elevenlabs.ErrNotFound)
	require.ErrorIs(t, c.DeleteTranscript(t.Context(), id), elevenlabs.ErrNotFound)

	httpResp, body := do(t, http.MethodGet, url+"/v1/speech-to-text/transcripts/"+id, testKey, "", nil)
	requireAPIError(t, httpResp, body, http.StatusNotFound, "not_found", "transcript_not_found", "transcription_id")
	httpResp, body = do(t, http.MethodDelete, url+"/v1/speech-to-text/transcripts/unknown", testKey, "", nil)
	requireAPIError(t, httpResp, body, http.StatusNotFound, "not_found", "transcript_not_found", "transcription_id")
}

func TestZeroRetentionKeepsNothing(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	resp, body := postForm(t, url, testKey, "?enable_logging=false", []field{{"model_id", "scribe_v2"}},
		filePart{"file", []byte("zero retention")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	id := decodeChunk(t, body).TranscriptionID
	_, err := client(t, url).GetTranscript(t.Context(), id)
	require.ErrorIs(t, err, elevenlabs.ErrNotFound)
}

func TestTranscriptNotFoundWhileProcessing(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, err := emulator.New(emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookDelay: time.Hour})
	require.NoError(t, err)
	srv := newServer(t, em)
	resp, convErr := client(t, srv).Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", SourceURL: "https://example.com/slow.mp3", Webhook: true,
	})
	require.NoError(t, convErr)
	_, err = client(t, srv).GetTranscript(t.Context(), resp.TranscriptionID)
	require.ErrorIs(t, err, elevenlabs.ErrNotFound, "nothing to GET until processing ends")

	// Close gives up on the hour-long job when its ctx ends.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, em.Close(ctx), context.DeadlineExceeded)
	require.Equal(t, "canceled", em.Ledger()[0].Delivery)
	require.Empty(t, rc.deliveries())
}

func TestCloseWaitsForPendingWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, err := emulator.New(emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret, WebhookDelay: 150 * time.Millisecond})
	require.NoError(t, err)
	url := newServer(t, em)
	for i := range 3 {
		resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"webhook", "true"}},
			filePart{"file", wav(t, 0.2, "", i)})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}
	require.Less(t, len(rc.deliveries()), 3, "the delay holds deliveries back")
	require.NoError(t, em.Close(t.Context()))
	require.Len(t, rc.deliveries(), 3, "Close returned only after every webhook went out")
	for _, c := range em.Ledger() {
		require.Equal(t, "delivered", c.Delivery)
	}

	// After Close, convert is refused.
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}}, filePart{"file", []byte("late")})
	requireAPIError(t, resp, body, http.StatusServiceUnavailable, "service_unavailable", "service_unavailable", "")
}

func TestProcessingTimeScalesWithDuration(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{SecondsPerAudioSecond: 0.1})
	started := time.Now()
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}}, filePart{"file", wav(t, 3, "", 1)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.GreaterOrEqual(t, time.Since(started), 300*time.Millisecond, "0.1 s per audio second of a 3 s file")
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, err := emulator.New(emulator.Config{
		WebhookURL: rc.url, WebhookSecret: testSecret, WebhookDelay: time.Hour, MaxConcurrent: 1,
	})
	require.NoError(t, err)
	url := newServer(t, em)
	c := client(t, url)
	req := &elevenlabs.ConvertRequest{ModelID: "scribe_v2", SourceURL: "https://example.com/a.mp3", Webhook: true}
	first, err := c.Convert(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, 1, first.ConcurrentRequests)
	require.Equal(t, 1, first.MaxConcurrentRequests)

	_, err = c.Convert(t.Context(), req)
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusTooManyRequests, apiErr.Status)
	require.Equal(t, "concurrent_limit_exceeded", apiErr.Code)
	require.True(t, apiErr.TooManyConcurrent())
	require.True(t, apiErr.Temporary())

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	require.Error(t, em.Close(ctx))
}

func TestLedgerAndHealthRoutes(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"webhook_metadata", `{"job_id":"j-led"}`}},
		filePart{"file", []byte("abc")})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = postForm(t, url, testKey, "", []field{{"model_id", "nope"}, {"webhook_metadata", `{"job_id":"j-bad"}`}},
		filePart{"file", []byte("abc")})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%s", body)

	resp, body = do(t, http.MethodGet, url+"/emulator/ledger", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var calls []emulator.Call
	require.NoError(t, json.Unmarshal(body, &calls))
	require.Len(t, calls, 2)
	require.Equal(t, "j-led", calls[0].JobID)
	require.Equal(t, 200, calls[0].Status)
	require.NotEmpty(t, calls[0].TranscriptionID)
	require.Equal(t, "j-bad", calls[1].JobID)
	require.Equal(t, 422, calls[1].Status)
	require.Equal(t, "invalid_parameters", calls[1].Error)
	require.Empty(t, calls[1].TranscriptionID)

	resp, _ = do(t, http.MethodGet, url+"/healthz", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = do(t, http.MethodGet, url+"/v2/nothing", testKey, "", nil)
	requireAPIError(t, resp, body, http.StatusNotFound, "not_found", "not_found", "")
}

// newServer serves em; the test closes em itself.
func newServer(t *testing.T, em *emulator.Server) string {
	t.Helper()
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}
