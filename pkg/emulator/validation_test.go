package emulator_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/emulator"
)

func TestConvertValidationErrors(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	_, noWebhookURL := start(t, emulator.Config{})
	file := filePart{"file", []byte("some audio")}
	model := field{"model_id", "scribe_v2"}
	manyTerms := make([]field, 0, 1002)
	manyTerms = append(manyTerms, model)
	for i := range 1001 {
		manyTerms = append(manyTerms, field{"keyterms", fmt.Sprintf("term%d", i)})
	}
	deep := `{"a":{"b":{"c":1}}}`

	tests := []struct {
		name   string
		url    string // default: the emulator with a webhook
		fields []field
		files  []filePart
		status int
		code   string // default invalid_parameters
		param  string
	}{
		{name: "ModelMissing", fields: nil, files: []filePart{file}, param: "model_id"},
		{name: "ModelUnknown", fields: []field{{"model_id", "whisper-1"}}, files: []filePart{file}, param: "model_id"},
		{name: "ModelRealtime", fields: []field{{"model_id", "scribe_v2_realtime"}}, files: []filePart{file}, param: "model_id"},
		{name: "NoInput", fields: []field{model}, param: "file"},
		{name: "FileAndSourceURL", fields: []field{model, {"source_url", "https://x.example/a.mp3"}}, files: []filePart{file}, param: "file"},
		{name: "SourceAndCloudURL", fields: []field{model, {"source_url", "https://x.example/a"}, {"cloud_storage_url", "https://x.example/b"}}, param: "file"},
		{name: "TwoFiles", fields: []field{model}, files: []filePart{file, file}, param: "file"},
		{name: "EmptyFile", fields: []field{model}, files: []filePart{{"file", nil}}, param: "file"},
		{name: "SourceURLNotHTTP", fields: []field{model, {"source_url", "ftp://x.example/a"}}, param: "source_url"},
		{name: "CloudURLNotHTTPS", fields: []field{model, {"cloud_storage_url", "http://x.example/a"}}, param: "cloud_storage_url"},
		{name: "NumSpeakersZero", fields: []field{model, {"num_speakers", "0"}}, files: []filePart{file}, param: "num_speakers"},
		{name: "NumSpeakers33", fields: []field{model, {"num_speakers", "33"}}, files: []filePart{file}, param: "num_speakers"},
		{name: "NumSpeakersText", fields: []field{model, {"num_speakers", "two"}}, files: []filePart{file}, param: "num_speakers"},
		{name: "Granularity", fields: []field{model, {"timestamps_granularity", "sentence"}}, files: []filePart{file}, param: "timestamps_granularity"},
		{name: "ThresholdWithoutDiarize", fields: []field{model, {"diarization_threshold", "0.3"}}, files: []filePart{file}, param: "diarization_threshold"},
		{name: "ThresholdWithNumSpeakers", fields: []field{model, {"diarize", "true"}, {"num_speakers", "2"}, {"diarization_threshold", "0.3"}}, files: []filePart{file}, param: "diarization_threshold"},
		{name: "ThresholdNotNumber", fields: []field{model, {"diarize", "true"}, {"diarization_threshold", "high"}}, files: []filePart{file}, param: "diarization_threshold"},
		{name: "BoolNotBool", fields: []field{model, {"diarize", "maybe"}}, files: []filePart{file}, param: "diarize"},
		{name: "KeytermsOnV1", fields: []field{{"model_id", "scribe_v1"}, {"keyterms", "scribeq"}}, files: []filePart{file}, param: "keyterms"},
		{name: "KeytermTooLong", fields: []field{model, {"keyterms", strings.Repeat("k", 50)}}, files: []filePart{file}, param: "keyterms"},
		{name: "KeytermSixWords", fields: []field{model, {"keyterms", "one two three four five six"}}, files: []filePart{file}, param: "keyterms"},
		{name: "KeytermBracket", fields: []field{model, {"keyterms", "ok"}, {"keyterms", "a[b]"}}, files: []filePart{file}, param: "keyterms"},
		{name: "KeytermBackslash", fields: []field{model, {"keyterms", `a\b`}}, files: []filePart{file}, param: "keyterms"},
		{name: "Keyterms1001", fields: manyTerms, files: []filePart{file}, param: "keyterms"},
		{name: "MetadataNotJSON", fields: []field{model, {"webhook", "true"}, {"webhook_metadata", "job=1"}}, files: []filePart{file}, param: "webhook_metadata"},
		{name: "MetadataArray", fields: []field{model, {"webhook", "true"}, {"webhook_metadata", `[1,2]`}}, files: []filePart{file}, param: "webhook_metadata"},
		{name: "MetadataTooDeep", fields: []field{model, {"webhook", "true"}, {"webhook_metadata", deep}}, files: []filePart{file}, param: "webhook_metadata"},
		{name: "MetadataTooDeepInString", fields: []field{model, {"webhook", "true"}, {"webhook_metadata", `"{\"a\":{\"b\":[1]}}"`}}, files: []filePart{file}, param: "webhook_metadata"},
		{name: "MetadataOver16KB", fields: []field{model, {"webhook", "true"}, {"webhook_metadata", `{"pad":"` + strings.Repeat("x", 16<<10) + `"}`}}, files: []filePart{file}, param: "webhook_metadata"},
		{name: "WebhookIDWithoutWebhook", fields: []field{model, {"webhook_id", "wh_1"}}, files: []filePart{file}, param: "webhook_id"},
		{name: "MultichannelDiarize", fields: []field{model, {"use_multi_channel", "true"}, {"diarize", "true"}}, files: []filePart{file}, param: "diarize"},
		{name: "MultichannelNumSpeakers", fields: []field{model, {"use_multi_channel", "true"}, {"num_speakers", "2"}}, files: []filePart{file}, param: "num_speakers"},
		{name: "NoVerbatimOnV1", fields: []field{{"model_id", "scribe_v1"}, {"no_verbatim", "true"}}, files: []filePart{file}, param: "no_verbatim"},
		{name: "Temperature", fields: []field{model, {"temperature", "2.5"}}, files: []filePart{file}, param: "temperature"},
		{name: "Seed", fields: []field{model, {"seed", "-1"}}, files: []filePart{file}, param: "seed"},
		{name: "FileFormat", fields: []field{model, {"file_format", "mp3"}}, files: []filePart{file}, param: "file_format"},
		{name: "AdditionalFormats", fields: []field{model, {"additional_formats", `[{"format":"vtt"}]`}}, files: []filePart{file}, param: "additional_formats"},
		{name: "LanguageCode", fields: []field{model, {"language_code", "english"}}, files: []filePart{file}, param: "language_code"},
		{name: "WebhookNotConfigured", url: noWebhookURL, fields: []field{model, {"webhook", "true"}}, files: []filePart{file},
			status: http.StatusBadRequest, code: "no_webhooks_configured", param: "webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := url
			if tt.url != "" {
				base = tt.url
			}
			status, code := http.StatusUnprocessableEntity, "invalid_parameters"
			if tt.status != 0 {
				status, code = tt.status, tt.code
			}
			resp, body := postForm(t, base, testKey, "", tt.fields, tt.files...)
			requireAPIError(t, resp, body, status, "validation_error", code, tt.param)
		})
	}
	t.Cleanup(func() {
		// Nothing refused was ever processed.
		require.Empty(t, rc.deliveries())
		for _, c := range em.Ledger() {
			require.NotEqual(t, http.StatusOK, c.Status, "%+v", c)
			require.Empty(t, c.TranscriptionID)
		}
	})
}

func TestConvertAcceptsWhatTheSDKsSend(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	_, url := start(t, emulator.Config{WebhookURL: rc.url, WebhookSecret: testSecret})
	file := filePart{"file", []byte("audio")}
	fifty := strings.Repeat("k", 49) // "under 50 characters"
	tests := []struct {
		name   string
		fields []field
		files  []filePart
	}{
		{name: "Minimal", fields: []field{{"model_id", "scribe_v2"}}, files: []filePart{file}},
		{name: "V1Experimental", fields: []field{{"model_id", "scribe_v1_experimental"}}, files: []filePart{file}},
		{name: "PythonBooleans", fields: []field{{"model_id", "scribe_v2"}, {"diarize", "True"}, {"tag_audio_events", "False"}}, files: []filePart{file}},
		{name: "Everything", fields: []field{
			{"model_id", "scribe_v2"}, {"language_code", "en"}, {"tag_audio_events", "true"}, {"num_speakers", "32"},
			{"timestamps_granularity", "word"}, {"diarize", "true"}, {"file_format", "other"}, {"webhook", "true"},
			{"webhook_id", "wh_123"}, {"temperature", "0.2"}, {"seed", "2147483647"},
			{"webhook_metadata", `{"job_id":"j","n":{"x":1},"l":[1,2]}`}, {"keyterms", "scribeq"}, {"keyterms", fifty},
			{"keyterms", "one two three four five"}, {"additional_formats", `[{"format":"srt","include_speakers":true}]`},
			{"unknown_future_field", "ignored"},
		}, files: []filePart{file}},
		{name: "Threshold", fields: []field{{"model_id", "scribe_v2"}, {"diarize", "true"}, {"diarization_threshold", "0.22"}}, files: []filePart{file}},
		{name: "KeytermsAsJSONList", fields: []field{{"model_id", "scribe_v2"}, {"keyterms", `["a","b c"]`}}, files: []filePart{file}},
		{name: "Metadata16KB", fields: []field{{"model_id", "scribe_v2"}, {"webhook", "true"},
			{"webhook_metadata", `{"pad":"` + strings.Repeat("x", 16<<10-10) + `"}`}}, files: []filePart{file}},
		{name: "SourceURL", fields: []field{{"model_id", "scribe_v2"}, {"source_url", "https://www.youtube.com/watch?v=x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := postForm(t, url, testKey, "", tt.fields, tt.files...)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			require.True(t, bytes.Contains(body, []byte(`"transcription_id"`)), "%s", body)
		})
	}
}

func TestConvertRejectsNonMultipart(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	resp, body := do(t, http.MethodPost, url+"/v1/speech-to-text", testKey, "application/json", strings.NewReader(`{"model_id":"scribe_v2"}`))
	requireAPIError(t, resp, body, http.StatusBadRequest, "validation_error", "invalid_request", "")
}

func TestConvertFileTooLarge(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{Limits: emulator.Limits{MaxFileBytes: 1000}})
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}}, filePart{"file", make([]byte, 1001)})
	requireAPIError(t, resp, body, http.StatusRequestEntityTooLarge, "validation_error", "file_too_large", "file")
	resp, body = postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}}, filePart{"file", make([]byte, 1000)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
}
