package elevenlabs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrSizeMismatch means ConvertRequest.File yielded more or fewer bytes than
// FileSize. The upload is aborted before the request completes.
var ErrSizeMismatch = errors.New("file size does not match FileSize")

func (r *ConvertRequest) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if r.ModelID == "" {
		return bad("ModelID is required")
	}
	inputs := 0
	for _, set := range []bool{r.File != nil, r.SourceURL != "", r.CloudStorageURL != ""} {
		if set {
			inputs++
		}
	}
	if inputs != 1 {
		return bad("exactly one of File, SourceURL or CloudStorageURL must be set, got %d", inputs)
	}
	if r.File != nil && r.FileSize <= 0 {
		return bad("FileSize must be > 0 with File, got %d", r.FileSize)
	}
	if r.NumSpeakers < 0 {
		return bad("NumSpeakers must be >= 0, got %d", r.NumSpeakers)
	}
	if r.WebhookID != "" && !r.Webhook {
		return bad("WebhookID is only valid with Webhook")
	}
	return nil
}

// form is an encoded multipart body: head, then fileSize bytes of file, then
// tail. Only head and tail are in memory.
type form struct {
	contentType string
	head, tail  []byte
	file        io.Reader
	fileSize    int64
}

func (f *form) size() int64 { return int64(len(f.head)) + f.fileSize + int64(len(f.tail)) }

// encode writes the form the way the official SDKs do. The Python SDK passes
// every field in httpx's data= (elevenlabs-python
// src/elevenlabs/speech_to_text/raw_client.py, RawSpeechToTextClient.convert,
// with core/http_client.py dropping omitted and None values), and httpx's
// multipart encoder (httpx/_multipart.py) turns each value into a text part
// without a Content-Type: booleans as "true"/"false", numbers as decimal
// text, and a list as ONE PART PER ITEM, so keyterms are repeated parts, not
// a JSON array. The JS SDK agrees (elevenlabs-js
// src/api/resources/speechToText/client/Client.ts appends "keyterms" once
// per term, and sends an object webhook_metadata as JSON text). Text fields
// come first and the file last, as httpx orders data before files.
//
// One deliberate difference: the file part's Content-Type is always
// application/octet-stream, where httpx guesses from the file name.
func (r *ConvertRequest) encode() (*form, error) {
	md, err := encodeMetadata(r.WebhookMetadata)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	var werr error
	field := func(name, value string) {
		if werr == nil {
			werr = w.WriteField(name, value)
		}
	}
	field("model_id", r.ModelID)
	if r.LanguageCode != "" {
		field("language_code", r.LanguageCode)
	}
	if r.TagAudioEvents != nil {
		field("tag_audio_events", strconv.FormatBool(*r.TagAudioEvents))
	}
	if r.NumSpeakers != 0 {
		field("num_speakers", strconv.Itoa(r.NumSpeakers))
	}
	if r.TimestampsGranularity != "" {
		field("timestamps_granularity", r.TimestampsGranularity)
	}
	if r.Diarize != nil {
		field("diarize", strconv.FormatBool(*r.Diarize))
	}
	if r.UseMultiChannel {
		field("use_multi_channel", "true")
	}
	if r.EntityDetection != "" {
		field("entity_detection", r.EntityDetection)
	}
	if r.SourceURL != "" {
		field("source_url", r.SourceURL)
	}
	if r.CloudStorageURL != "" {
		field("cloud_storage_url", r.CloudStorageURL)
	}
	if r.Webhook {
		field("webhook", "true")
	}
	if r.WebhookID != "" {
		field("webhook_id", r.WebhookID)
	}
	if md != nil {
		field("webhook_metadata", string(md))
	}
	for _, k := range r.Keyterms {
		field("keyterms", k)
	}
	f := &form{contentType: w.FormDataContentType()}
	if r.File != nil && werr == nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+escapeFormParam(baseName(r.FileName))+`"`)
		h.Set("Content-Type", "application/octet-stream")
		_, werr = w.CreatePart(h)
		f.file, f.fileSize = r.File, r.FileSize
	}
	split := buf.Len()
	if werr == nil {
		werr = w.Close() // the closing boundary becomes the tail
	}
	if werr != nil {
		return nil, fmt.Errorf("encode form: %w", werr)
	}
	all := buf.Bytes()
	f.head, f.tail = all[:split], all[split:]
	return f, nil
}

// encodeMetadata returns webhook_metadata as compact JSON text, or nil when
// unset. The API wants an object; catching anything else here turns a
// programming error into ErrInvalidRequest instead of a billed 422.
func encodeMetadata(v any) ([]byte, error) {
	var raw []byte
	switch m := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		raw = m
	case []byte:
		raw = m
	case string:
		raw = []byte(m)
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // as JSON.stringify in the JS SDK
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("%w: WebhookMetadata: %v", ErrInvalidRequest, err)
		}
		raw = b.Bytes()
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, fmt.Errorf("%w: WebhookMetadata is not JSON: %v", ErrInvalidRequest, err)
	}
	if out.Bytes()[0] != '{' {
		return nil, fmt.Errorf("%w: WebhookMetadata must be a JSON object", ErrInvalidRequest)
	}
	return out.Bytes(), nil
}

// baseName strips any directory, POSIX or Windows style, as the SDK sends
// only a file's name.
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		return "upload" // httpx's name for a nameless file
	}
	return name
}

// escapeFormParam escapes a Content-Disposition parameter value as httpx
// does (httpx/_multipart.py _format_form_param, the WHATWG form rules):
// `"` becomes %22, `\` is doubled, and control characters other than ESC
// become %XX.
func escapeFormParam(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			b.WriteString("%22")
		case c == '\\':
			b.WriteString(`\\`)
		case c <= 0x1f && c != 0x1b:
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// body is the request body: head, the sized file, tail. Close makes later
// reads fail so the caller's File is left alone once Convert returns, even
// when the transport is still writing after an early response.
func (f *form) body() *uploadBody {
	b := &uploadBody{}
	if f.file == nil {
		b.r = io.MultiReader(bytes.NewReader(f.head), bytes.NewReader(f.tail))
		return b
	}
	b.sized = &sizedReader{r: f.file, want: f.fileSize}
	b.r = io.MultiReader(bytes.NewReader(f.head), b.sized, bytes.NewReader(f.tail))
	return b
}

var errBodyClosed = errors.New("upload body closed")

type uploadBody struct {
	r      io.Reader
	sized  *sizedReader
	closed atomic.Bool
}

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.r.Read(p)
}

// Close never waits for a Read in progress: a stalled File must not keep
// Convert from returning when its ctx ends.
func (b *uploadBody) Close() error {
	b.closed.Store(true)
	return nil
}

func (b *uploadBody) fileErr() error {
	if b.sized == nil {
		return nil
	}
	return b.sized.failure()
}

// sizedReader yields exactly want bytes of r and fails with ErrSizeMismatch
// when r is shorter or longer. The failure is remembered so Convert can
// report it instead of the transport's vaguer error.
type sizedReader struct {
	r    io.Reader
	want int64
	n    int64
	eof  bool

	mu  sync.Mutex
	err error
}

func (s *sizedReader) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	return s.err
}

func (s *sizedReader) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if err := s.failure(); err != nil {
		return 0, err
	}
	if s.eof {
		return 0, io.EOF
	}
	if s.n >= s.want {
		// All declared bytes are out; one more byte means FileSize lied.
		var one [1]byte
		n, err := s.r.Read(one[:])
		switch {
		case n > 0:
			return 0, s.fail(fmt.Errorf("%w: file has more than FileSize %d bytes", ErrSizeMismatch, s.want))
		case errors.Is(err, io.EOF):
			s.eof = true
			return 0, io.EOF
		case err != nil:
			return 0, s.fail(fmt.Errorf("read file: %w", err))
		}
		return 0, nil
	}
	if rem := s.want - s.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		if s.n < s.want {
			return n, s.fail(fmt.Errorf("%w: file ended after %d bytes, FileSize is %d", ErrSizeMismatch, s.n, s.want))
		}
		s.eof = true
		return n, io.EOF
	case err != nil:
		return n, s.fail(fmt.Errorf("read file: %w", err))
	}
	return n, nil
}
