package elevenlabs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

const testKey = "sk_test_0123456789abcdef"

// part is one multipart part as the server saw it.
type part struct {
	Name        string
	Disposition string // the raw Content-Disposition header
	ContentType string // "" when the part has none
	Value       string
}

// seen is one request as the server saw it, checked in the test goroutine.
type seen struct {
	Method, Path     string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Received         int64
	Parts            []part
	ParseErr         error
}

// recorder answers every request with status, headers and body, and keeps
// what it saw.
type recorder struct {
	mu     sync.Mutex
	reqs   []seen
	status int
	header map[string]string
	body   string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s := seen{
		Method:           r.Method,
		Path:             r.URL.EscapedPath(),
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Received:         int64(len(raw)),
	}
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		s.Parts, s.ParseErr = readParts(multipart.NewReader(bytes.NewReader(raw), params["boundary"]))
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, s)
	status, header, body := rec.status, rec.header, rec.body
	rec.mu.Unlock()
	for k, v := range header {
		w.Header().Set(k, v)
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (rec *recorder) requests() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

func readParts(mr *multipart.Reader) ([]part, error) {
	var parts []part
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return parts, err
		}
		parts = append(parts, part{
			Name:        p.FormName(),
			Disposition: p.Header.Get("Content-Disposition"),
			ContentType: p.Header.Get("Content-Type"),
			Value:       string(v),
		})
	}
}

// textPart is a form field as the SDK's httpx encoder writes it: no
// Content-Type header.
func textPart(name, value string) part {
	return part{Name: name, Disposition: `form-data; name="` + name + `"`, Value: value}
}

func newTestClient(t *testing.T, h http.Handler) (*elevenlabs.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := elevenlabs.New(elevenlabs.Config{BaseURL: srv.URL + "/", APIKey: testKey})
	require.NoError(t, err)
	return c, srv
}

func requireSingleRequest(t *testing.T, rec *recorder) seen {
	t.Helper()
	reqs := rec.requests()
	require.Len(t, reqs, 1)
	s := reqs[0]
	require.NoError(t, s.ParseErr)
	return s
}

// requireStandardHeaders checks what every call must send (and not send).
func requireStandardHeaders(t *testing.T, s seen) {
	t.Helper()
	require.Equal(t, testKey, s.Header.Get("xi-api-key"))
	require.Equal(t, "scribeq", s.Header.Get("User-Agent"))
	require.Equal(t, "application/json", s.Header.Get("Accept"))
	// A key would let net/http replay the POST by itself (RELIABILITY.md).
	require.Empty(t, s.Header.Get("Idempotency-Key"))
	require.Empty(t, s.Header.Get("X-Idempotency-Key"))
}

// requireSized checks the body was sent with an exact Content-Length.
func requireSized(t *testing.T, s seen) {
	t.Helper()
	require.Positive(t, s.ContentLength, "Content-Length must be set")
	require.Equal(t, s.ContentLength, s.Received, "Content-Length must equal the bytes received")
	require.Empty(t, s.TransferEncoding, "body must not be chunked")
}

func TestConvertFileMultipart(t *testing.T) {
	t.Parallel()
	rec := &recorder{
		header: map[string]string{
			"Content-Type":                "application/json",
			"request-id":                  "hdr_req_1",
			"current-concurrent-requests": "3",
			"maximum-concurrent-requests": "10",
		},
		body: `{"message":"Request accepted","request_id":"req_1","transcription_id":"tr_1"}`,
	}
	c, _ := newTestClient(t, rec)

	audio := make([]byte, 300_001)
	_, _ = rand.Read(audio)
	f, tru := false, true
	resp, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID:               "scribe_v2",
		File:                  bytes.NewReader(audio),
		FileName:              "/var/spool/in/call-01.mp3",
		FileSize:              int64(len(audio)),
		LanguageCode:          "en",
		TagAudioEvents:        &f,
		NumSpeakers:           3,
		TimestampsGranularity: "character",
		Diarize:               &tru,
		Keyterms:              []string{"alpha", "beta gamma"},
		Webhook:               true,
		WebhookID:             "wh_1",
		WebhookMetadata:       map[string]string{"job_id": "j1", "attempt_id": "a<1>"},
	})
	require.NoError(t, err)
	require.Equal(t, "Request accepted", resp.Message)
	require.Equal(t, "req_1", resp.RequestID)
	require.Equal(t, "tr_1", resp.TranscriptionID)
	require.Equal(t, "hdr_req_1", resp.RequestIDHeader)
	require.Equal(t, 3, resp.ConcurrentRequests)
	require.Equal(t, 10, resp.MaxConcurrentRequests)
	require.JSONEq(t, rec.body, string(resp.Raw))

	s := requireSingleRequest(t, rec)
	require.Equal(t, http.MethodPost, s.Method)
	require.Equal(t, "/v1/speech-to-text", s.Path)
	requireStandardHeaders(t, s)
	requireSized(t, s)
	mt, _, err := mime.ParseMediaType(s.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/form-data", mt)

	require.Equal(t, []part{
		textPart("model_id", "scribe_v2"),
		textPart("language_code", "en"),
		textPart("tag_audio_events", "false"),
		textPart("num_speakers", "3"),
		textPart("timestamps_granularity", "character"),
		textPart("diarize", "true"),
		textPart("webhook", "true"),
		textPart("webhook_id", "wh_1"),
		// Compact JSON, keys sorted by encoding/json, no HTML escaping.
		textPart("webhook_metadata", `{"attempt_id":"a<1>","job_id":"j1"}`),
		// One part per term, as httpx and the JS SDK send lists.
		textPart("keyterms", "alpha"),
		textPart("keyterms", "beta gamma"),
		{
			Name:        "file",
			Disposition: `form-data; name="file"; filename="call-01.mp3"`,
			ContentType: "application/octet-stream",
			Value:       string(audio),
		},
	}, s.Parts)
}

func TestConvertOmitsUnsetFields(t *testing.T) {
	t.Parallel()
	rec := &recorder{body: `{"message":"ok","request_id":"r"}`}
	c, _ := newTestClient(t, rec)

	_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID:         "scribe_v1",
		File:            strings.NewReader("abc"),
		FileSize:        3,
		WebhookMetadata: map[string]string(nil), // marshals to null: unset
	})
	require.NoError(t, err)
	s := requireSingleRequest(t, rec)
	requireSized(t, s)
	require.Equal(t, []part{
		textPart("model_id", "scribe_v1"),
		{
			Name:        "file",
			Disposition: `form-data; name="file"; filename="upload"`,
			ContentType: "application/octet-stream",
			Value:       "abc",
		},
	}, s.Parts)
}

func TestConvertFileNameEscaping(t *testing.T) {
	t.Parallel()
	rec := &recorder{body: `{"message":"ok","request_id":"r"}`}
	c, _ := newTestClient(t, rec)

	_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID:  "scribe_v2",
		File:     strings.NewReader("x"),
		FileSize: 1,
		FileName: `C:\calls\say "hi"` + "\n" + `.wav`,
	})
	require.NoError(t, err)
	s := requireSingleRequest(t, rec)
	require.Len(t, s.Parts, 2)
	// httpx (WHATWG) escaping: quote → %22, control characters → %XX.
	require.Equal(t, `form-data; name="file"; filename="say %22hi%22%0A.wav"`, s.Parts[1].Disposition)
}

func TestConvertSourceURL(t *testing.T) {
	t.Parallel()
	syncAnswer := `{"language_code":"en","language_probability":0.9,"text":"hi","words":[],"transcription_id":"tr_s"}`
	tests := []struct {
		name  string
		req   elevenlabs.ConvertRequest
		parts []part
	}{
		{
			name: "SourceURL",
			req: elevenlabs.ConvertRequest{
				ModelID:         "scribe_v2",
				SourceURL:       "https://media.example.com/a.mp3?sig=x&y=1",
				Webhook:         true,
				WebhookMetadata: `{ "job_id" : "j2" }`, // JSON text is sent compact
			},
			parts: []part{
				textPart("model_id", "scribe_v2"),
				textPart("source_url", "https://media.example.com/a.mp3?sig=x&y=1"),
				textPart("webhook", "true"),
				textPart("webhook_metadata", `{"job_id":"j2"}`),
			},
		},
		{
			name: "CloudStorageURL",
			req: elevenlabs.ConvertRequest{
				ModelID:         "scribe_v2",
				CloudStorageURL: "https://bucket.s3.amazonaws.com/a.wav",
				WebhookMetadata: json.RawMessage(`{"job_id":"j3"}`),
			},
			parts: []part{
				textPart("model_id", "scribe_v2"),
				textPart("cloud_storage_url", "https://bucket.s3.amazonaws.com/a.wav"),
				textPart("webhook_metadata", `{"job_id":"j3"}`),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{body: syncAnswer}
			c, _ := newTestClient(t, rec)
			resp, err := c.Convert(t.Context(), &tt.req)
			require.NoError(t, err)
			require.Empty(t, resp.Message)
			require.Equal(t, "tr_s", resp.TranscriptionID)
			tr, err := elevenlabs.ParseTranscript(resp.Raw)
			require.NoError(t, err)
			require.Equal(t, "hi", tr.Text)

			s := requireSingleRequest(t, rec)
			requireStandardHeaders(t, s)
			requireSized(t, s)
			require.Equal(t, tt.parts, s.Parts)
		})
	}
}

func TestConvertRejectsInvalidRequests(t *testing.T) {
	t.Parallel()
	rec := &recorder{body: `{}`}
	c, _ := newTestClient(t, rec)
	file := func() io.Reader { return strings.NewReader("abc") }
	tests := []struct {
		name string
		req  *elevenlabs.ConvertRequest
		msg  string
	}{
		{name: "Nil", req: nil, msg: "nil request"},
		{name: "NoModel", req: &elevenlabs.ConvertRequest{SourceURL: "https://x"}, msg: "ModelID"},
		{name: "NoInput", req: &elevenlabs.ConvertRequest{ModelID: "m"}, msg: "exactly one"},
		{name: "TwoInputs", req: &elevenlabs.ConvertRequest{ModelID: "m", File: file(), FileSize: 3, SourceURL: "https://x"}, msg: "exactly one"},
		{name: "FileWithoutSize", req: &elevenlabs.ConvertRequest{ModelID: "m", File: file()}, msg: "FileSize"},
		{name: "NegativeSpeakers", req: &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x", NumSpeakers: -1}, msg: "NumSpeakers"},
		{name: "WebhookIDWithoutWebhook", req: &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x", WebhookID: "w"}, msg: "WebhookID"},
		{name: "MetadataArray", req: &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x", WebhookMetadata: []int{1}}, msg: "object"},
		{name: "MetadataBadJSON", req: &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x", WebhookMetadata: "{job"}, msg: "not JSON"},
		{name: "MetadataUnmarshalable", req: &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x", WebhookMetadata: map[string]any{"c": make(chan int)}}, msg: "WebhookMetadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Convert(t.Context(), tt.req)
			require.ErrorIs(t, err, elevenlabs.ErrInvalidRequest)
			require.ErrorContains(t, err, tt.msg)
		})
	}
	t.Cleanup(func() { require.Empty(t, rec.requests(), "nothing may be sent") })
}

// lyingReader yields n bytes of x, then err.
type lyingReader struct {
	n   int
	err error
}

func (l *lyingReader) Read(p []byte) (int, error) {
	if l.n == 0 {
		return 0, l.err
	}
	k := min(len(p), l.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	l.n -= k
	return k, nil
}

func TestConvertFileSizeMismatch(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name   string
		file   io.Reader
		wantIs error
		msg    string
	}{
		{name: "Shorter", file: &lyingReader{n: 600, err: io.EOF}, wantIs: elevenlabs.ErrSizeMismatch, msg: "ended after 600 bytes"},
		{name: "Longer", file: &lyingReader{n: 1200, err: io.EOF}, wantIs: elevenlabs.ErrSizeMismatch, msg: "more than FileSize 1000"},
		{name: "ReadError", file: &lyingReader{n: 10, err: errDisk}, wantIs: errDisk, msg: "read file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{body: `{"message":"ok","request_id":"r"}`}
			c, _ := newTestClient(t, rec)
			_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{ModelID: "m", File: tt.file, FileSize: 1000})
			require.ErrorIs(t, err, tt.wantIs)
			require.ErrorContains(t, err, tt.msg)
			var apiErr *elevenlabs.APIError
			require.NotErrorAs(t, err, &apiErr)
			for _, s := range rec.requests() {
				require.Less(t, s.Received, s.ContentLength, "no complete request may arrive")
			}
		})
	}
}

func TestConvertHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Convert(ctx, &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestConvertNetworkErrorIsWrappedWithoutKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c, err := elevenlabs.New(elevenlabs.Config{BaseURL: url, APIKey: testKey})
	require.NoError(t, err)
	_, err = c.Convert(t.Context(), &elevenlabs.ConvertRequest{ModelID: "m", SourceURL: "https://x"})
	require.Error(t, err)
	var apiErr *elevenlabs.APIError
	require.NotErrorAs(t, err, &apiErr)
	require.ErrorContains(t, err, "elevenlabs: convert:")
	require.NotContains(t, err.Error(), testKey)
}

func TestClientNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("xi-api-key") != "" {
			stolen.Add(1)
		}
	}))
	t.Cleanup(evil.Close)
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/v1/speech-to-text/transcripts/x", http.StatusFound)
	}))
	_, err := c.GetTranscript(t.Context(), "x")
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusFound, apiErr.Status)
	require.Zero(t, stolen.Load(), "the key must not reach another host")
}

func TestGetTranscript(t *testing.T) {
	t.Parallel()
	rec := &recorder{body: singleTranscription}
	c, _ := newTestClient(t, rec)
	raw, err := c.GetTranscript(t.Context(), "tr/1 x")
	require.NoError(t, err)
	require.JSONEq(t, singleTranscription, string(raw))
	s := requireSingleRequest(t, rec)
	require.Equal(t, http.MethodGet, s.Method)
	require.Equal(t, "/v1/speech-to-text/transcripts/tr%2F1%20x", s.Path)
	requireStandardHeaders(t, s)
}

func TestGetTranscriptErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		notFound bool
	}{
		{name: "NotFound", status: 404, body: `{"detail":{"status":"transcript_not_found","message":"not found"}}`, notFound: true},
		{name: "ServerError", status: 500, body: `oops`},
		{name: "NotJSON", status: 200, body: `<html>`},
		{name: "Empty", status: 200, body: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, &recorder{status: tt.status, body: tt.body})
			_, err := c.GetTranscript(t.Context(), "tr_1")
			require.Error(t, err)
			require.Equal(t, tt.notFound, errors.Is(err, elevenlabs.ErrNotFound))
		})
	}
	c, _ := newTestClient(t, &recorder{})
	_, err := c.GetTranscript(t.Context(), " ")
	require.ErrorIs(t, err, elevenlabs.ErrInvalidRequest)
}

func TestDeleteTranscript(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		wantErr  bool
		notFound bool
	}{
		{name: "EmptyBody", status: 200},
		{name: "AnyBody", status: 200, body: `"deleted"`},
		{name: "NoContent", status: 204},
		{name: "NotFound", status: 404, body: `{"detail":"Not Found"}`, wantErr: true, notFound: true},
		{name: "Unauthorized", status: 401, body: `{"detail":{"status":"invalid_api_key","message":"bad key"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{status: tt.status, body: tt.body}
			c, _ := newTestClient(t, rec)
			err := c.DeleteTranscript(t.Context(), "tr_1")
			s := requireSingleRequest(t, rec)
			require.Equal(t, http.MethodDelete, s.Method)
			require.Equal(t, "/v1/speech-to-text/transcripts/tr_1", s.Path)
			requireStandardHeaders(t, s)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tt.notFound, errors.Is(err, elevenlabs.ErrNotFound))
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, err := elevenlabs.New(elevenlabs.Config{})
	require.ErrorContains(t, err, "APIKey")

	_, err = elevenlabs.New(elevenlabs.Config{APIKey: testKey, BaseURL: "ftp://example.com"})
	require.ErrorContains(t, err, "BaseURL")
	require.NotContains(t, err.Error(), testKey)

	_, err = elevenlabs.New(elevenlabs.Config{APIKey: testKey})
	require.NoError(t, err, "defaults are valid")
}

func TestConvertFileReaderShapes(t *testing.T) {
	t.Parallel()
	content := strings.Repeat("0123456789", 1000)
	tests := map[string]func() io.Reader{
		// Returns the last bytes together with io.EOF.
		"DataErr": func() io.Reader { return iotest.DataErrReader(strings.NewReader(content)) },
		"OneByte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(content)) },
		"Half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(content)) },
	}
	for name, file := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{body: `{"message":"ok","request_id":"r"}`}
			c, _ := newTestClient(t, rec)
			_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
				ModelID: "m", File: file(), FileSize: int64(len(content)), FileName: "a.wav",
			})
			require.NoError(t, err)
			s := requireSingleRequest(t, rec)
			requireSized(t, s)
			require.Len(t, s.Parts, 2)
			require.Equal(t, content, s.Parts[1].Value)
		})
	}
}

func TestConvertSendsMultichannelAndEntityDetection(t *testing.T) {
	t.Parallel()
	rec := &recorder{body: `{"message":"ok","request_id":"r"}`}
	c, _ := newTestClient(t, rec)
	_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID:         "scribe_v2",
		SourceURL:       "https://example.com/a.mp3",
		UseMultiChannel: true,
		EntityDetection: "pii",
	})
	require.NoError(t, err)
	s := requireSingleRequest(t, rec)
	require.Equal(t, []part{
		textPart("model_id", "scribe_v2"),
		textPart("use_multi_channel", "true"),
		textPart("entity_detection", "pii"),
		textPart("source_url", "https://example.com/a.mp3"),
	}, s.Parts)
}
