package emulator_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
)

const (
	testKey    = "sk_emulator_test_key"
	testSecret = "whsec_emulator_test_secret"
)

// start runs an emulator behind an httptest server. Cleanup closes both.
func start(t *testing.T, cfg emulator.Config) (*emulator.Server, string) {
	t.Helper()
	em, err := emulator.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = em.Close(ctx)
	})
	return em, srv.URL
}

func client(t *testing.T, baseURL string) *elevenlabs.Client {
	t.Helper()
	c, err := elevenlabs.New(elevenlabs.Config{BaseURL: baseURL, APIKey: testKey})
	require.NoError(t, err)
	return c
}

// wav makes a mono 16 kHz WAV of the given length; seed varies the samples
// so different calls give different bytes.
func wav(t *testing.T, seconds float64, comment string, seed int) []byte {
	t.Helper()
	samples := make([]int16, int(seconds*16000))
	for i := range samples {
		samples[i] = int16((i*(seed*7+13) + seed) % 3000)
	}
	var buf bytes.Buffer
	require.NoError(t, audio.WriteWAV(&buf, 16000, samples, comment))
	return buf.Bytes()
}

// receiver is a webhook endpoint that answers status and keeps every POST.
type receiver struct {
	url    string
	status int
	mu     sync.Mutex
	got    []delivery
}

type delivery struct {
	header http.Header
	body   []byte
	at     time.Time // arrival
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	return newHookReceiver(t, status, nil)
}

// newHookReceiver is newReceiver calling hook (when not nil) with each
// delivery as it arrives, before it is answered.
func newHookReceiver(t *testing.T, status int, hook func(delivery)) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{header: r.Header.Clone(), body: body, at: time.Now()}
		if hook != nil {
			hook(d)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		rc.mu.Unlock()
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/webhooks/elevenlabs"
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

type field struct{ name, value string }

type filePart struct {
	name string // the form name, normally "file"
	data []byte
}

// postForm sends a multipart convert request as the SDKs do: text parts
// first, then the file parts.
func postForm(t *testing.T, baseURL, key, query string, fields []field, files ...filePart) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		require.NoError(t, mw.WriteField(f.name, f.value))
	}
	for _, f := range files {
		w, err := mw.CreateFormFile(f.name, "audio.wav")
		require.NoError(t, err)
		_, err = w.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return do(t, http.MethodPost, baseURL+"/v1/speech-to-text"+query, key, mw.FormDataContentType(), &buf)
}

func do(t *testing.T, method, url, key, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("xi-api-key", key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// requireAPIError checks an error answer has the documented shape:
// {"detail":{type, code, message, status, request_id, param}}.
func requireAPIError(t *testing.T, resp *http.Response, body []byte, status int, typ, code, param string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, "body: %s", body)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var top map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &top), "body: %s", body)
	require.Len(t, top, 1, "only detail at the top level: %s", body)
	d, ok := top["detail"]
	require.True(t, ok, "body: %s", body)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{"type", "code", "message", "status", "request_id", "param"}, keys)
	require.Equal(t, typ, d["type"])
	require.Equal(t, code, d["code"])
	require.Equal(t, code, d["status"], "legacy status mirrors code")
	require.NotEmpty(t, d["message"])
	require.Regexp(t, requestIDPattern, d["request_id"])
	require.Equal(t, resp.Header.Get("request-id"), d["request_id"])
	if param == "" {
		require.Nil(t, d["param"])
	} else {
		require.Equal(t, param, d["param"])
	}
}

// sdkConstructEvent is the official SDKs' verification, line for line
// (elevenlabs-python src/elevenlabs/webhooks_custom.py construct_event;
// elevenlabs-js src/wrapper/webhooks.ts constructEvent): split on ","
// without trimming, plain string compare of "v0=<hex>".
func sdkConstructEvent(rawBody []byte, sigHeader, secret string, now time.Time) (map[string]any, error) {
	if sigHeader == "" {
		return nil, errors.New("Missing signature header")
	}
	var timestamp, signature string
	for _, h := range strings.Split(sigHeader, ",") {
		if strings.HasPrefix(h, "t=") {
			timestamp = h[2:]
		} else if strings.HasPrefix(h, "v0=") {
			signature = h
		}
	}
	if timestamp == "" || signature == "" {
		return nil, errors.New("No signature hash found with expected scheme v0")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, err
	}
	if ts*1000 < now.UnixMilli()-30*60*1000 {
		return nil, errors.New("Timestamp outside the tolerance zone")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "." + string(rawBody)))
	if signature != "v0="+hex.EncodeToString(mac.Sum(nil)) {
		return nil, errors.New("Signature hash does not match the expected signature hash for payload")
	}
	var event map[string]any
	return event, json.Unmarshal(rawBody, &event)
}

// chunk is the transcript as a test reads it.
type chunk struct {
	LanguageCode        string  `json:"language_code"`
	LanguageProbability float64 `json:"language_probability"`
	Text                string  `json:"text"`
	TranscriptionID     string  `json:"transcription_id"`
	AudioDurationSecs   float64 `json:"audio_duration_secs"`
	Words               []struct {
		Text       string   `json:"text"`
		Type       string   `json:"type"`
		Start      *float64 `json:"start"`
		End        *float64 `json:"end"`
		SpeakerID  string   `json:"speaker_id"`
		Logprob    *float64 `json:"logprob"`
		Characters []struct {
			Text  string  `json:"text"`
			Start float64 `json:"start"`
			End   float64 `json:"end"`
		} `json:"characters"`
	} `json:"words"`
}

func decodeChunk(t *testing.T, raw []byte) chunk {
	t.Helper()
	var c chunk
	require.NoError(t, json.Unmarshal(raw, &c), "%s", raw)
	return c
}

// requireWellFormed checks the invariants of every transcript: words and
// single spacings alternate, re-joined they give text, timings never go
// backwards and stay inside the audio.
func requireWellFormed(t *testing.T, c chunk) {
	t.Helper()
	require.NotEmpty(t, c.Words)
	var joined strings.Builder
	last := 0.0
	for i, w := range c.Words {
		if i%2 == 0 {
			require.Equal(t, "word", w.Type, "entry %d", i)
		} else {
			require.Equal(t, "spacing", w.Type, "entry %d", i)
			require.Equal(t, " ", w.Text)
		}
		require.NotNil(t, w.Logprob, "logprob is required")
		require.LessOrEqual(t, *w.Logprob, 0.0)
		require.NotEmpty(t, w.SpeakerID)
		joined.WriteString(w.Text)
		if w.Start != nil {
			require.NotNil(t, w.End)
			require.GreaterOrEqual(t, *w.Start, last-1e-9, "entry %d", i)
			require.GreaterOrEqual(t, *w.End, *w.Start)
			require.LessOrEqual(t, *w.End, c.AudioDurationSecs+1e-6)
			last = *w.End
		}
	}
	require.Equal(t, c.Text, joined.String())
	require.Equal(t, len(c.Words)%2, 1, "ends on a word")
	require.False(t, math.IsNaN(c.AudioDurationSecs))
}
