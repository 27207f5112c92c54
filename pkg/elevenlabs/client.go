package elevenlabs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidRequest wraps every reason a call is refused before anything is
// sent. It is permanent: retrying the same request cannot succeed.
var ErrInvalidRequest = errors.New("invalid request")

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL of the API. Default "https://api.elevenlabs.io". A path prefix
	// is kept (useful for the emulator behind a proxy).
	BaseURL string
	// APIKey is sent as the xi-api-key header. Required. It is never logged
	// and never put in an error, even if a response body echoes it.
	APIKey string
	// HTTPClient does the calls. Default &http.Client{} with no overall
	// Timeout: an upload of several GB streams for minutes, so each call's
	// ctx is the only deadline. Whatever is given, redirects are never
	// followed, so the key cannot be forwarded to another host.
	HTTPClient *http.Client
	// UserAgent header. Default "scribeq".
	UserAgent string
	// MaxResponseBytes caps how much of a successful response body is read.
	// Default 256 MiB: a 10 h transcript with character timestamps and
	// base64 additional formats is large, but must not exhaust memory.
	MaxResponseBytes int64
}

const (
	defaultBaseURL          = "https://api.elevenlabs.io"
	defaultUserAgent        = "scribeq"
	defaultMaxResponseBytes = 256 << 20
	// Error bodies are only decoded for a message; more is noise.
	maxErrorBodyBytes = 1 << 20
)

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = defaultBaseURL
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.UserAgent == "" {
		c.UserAgent = defaultUserAgent
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = defaultMaxResponseBytes
	}
	return c
}

func (c Config) validate() error {
	if c.APIKey == "" {
		return errors.New("elevenlabs: Config.APIKey is required")
	}
	// The errors do not repeat the value: one pasted into the wrong
	// variable may be a credential.
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		return errors.New("elevenlabs: Config.BaseURL is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("elevenlabs: Config.BaseURL has scheme %q; want http or https", u.Scheme)
	case u.Host == "":
		return errors.New("elevenlabs: Config.BaseURL has no host")
	}
	return nil
}

// Client calls the ElevenLabs Speech-to-Text API. It never retries: the
// caller owns the retry policy, because a repeated convert is billed again.
// A Client is safe for concurrent use.
type Client struct {
	base    string
	key     string
	ua      string
	maxResp int64
	hc      *http.Client
	now     func() time.Time
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hc := *cfg.HTTPClient // a copy: the caller's client keeps its own redirect policy
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		key:     cfg.APIKey,
		ua:      cfg.UserAgent,
		maxResp: cfg.MaxResponseBytes,
		hc:      &hc,
		now:     time.Now,
	}, nil
}

// ConvertRequest is one POST /v1/speech-to-text. Exactly one of File,
// SourceURL or CloudStorageURL is the input. Zero values are left out of the
// form, so the API applies its own defaults.
type ConvertRequest struct {
	// ModelID, e.g. "scribe_v2". Required.
	ModelID string

	// File is streamed as the "file" part; FileSize (required with File) is
	// its exact length, used for Content-Length. A different number of bytes
	// fails the call with ErrSizeMismatch. FileName's base name is sent as
	// the part's filename ("upload" when empty). Convert does not close File
	// and stops reading it when it returns (a single Read already in
	// progress may finish later; closing File is expected to end it).
	File     io.Reader
	FileName string
	FileSize int64
	// SourceURL is any hosted media the API fetches itself.
	SourceURL string
	// CloudStorageURL is the deprecated predecessor of SourceURL.
	CloudStorageURL string

	LanguageCode          string
	TagAudioEvents        *bool
	NumSpeakers           int // 0 = unset
	TimestampsGranularity string
	Diarize               *bool
	Keyterms              []string
	// UseMultiChannel transcribes each channel separately (at most 5); each
	// channel is billed at the full duration.
	UseMultiChannel bool
	// EntityDetection is "all", a category (pii, phi, pci, other,
	// offensive_language) or an entity type; empty sends nothing.
	EntityDetection string

	// Webhook makes the call return early; the result arrives by webhook.
	Webhook bool
	// WebhookID picks one configured webhook; only valid with Webhook.
	WebhookID string
	// WebhookMetadata must encode to a JSON object; it comes back in the
	// webhook. A string, []byte or json.RawMessage is taken as JSON text;
	// anything else is marshalled. It is sent compact.
	WebhookMetadata any
}

// ConvertResponse is a successful convert answer.
type ConvertResponse struct {
	// Message, RequestID and TranscriptionID are the webhook=true answer;
	// TranscriptionID may be absent (take it from the webhook then).
	Message         string
	RequestID       string
	TranscriptionID string
	// Raw is the whole body; a synchronous answer is a transcript (see
	// ParseTranscript).
	Raw json.RawMessage
	// RequestIDHeader is the `request-id` response header, if any.
	RequestIDHeader string
	// ConcurrentRequests and MaxConcurrentRequests come from the
	// current-concurrent-requests / maximum-concurrent-requests headers
	// (0 when absent), so a caller can size its own concurrency limit.
	ConcurrentRequests    int
	MaxConcurrentRequests int
}

// Convert sends req. Failures are an *APIError for any non-2xx answer, an
// error wrapping ErrInvalidRequest or ErrSizeMismatch for a request that
// cannot succeed, and otherwise a wrapped transport or file-read error,
// after which the call may or may not have reached ElevenLabs.
func (c *Client) Convert(ctx context.Context, req *ConvertRequest) (*ConvertResponse, error) {
	if req == nil {
		return nil, fmt.Errorf("elevenlabs: convert: %w: nil request", ErrInvalidRequest)
	}
	if err := req.validate(); err != nil {
		return nil, fmt.Errorf("elevenlabs: convert: %w", err)
	}
	form, err := req.encode()
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: convert: %w", err)
	}
	body := form.body()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/speech-to-text", body)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: convert: %w", err)
	}
	// Set explicitly: body is not a type NewRequest sizes, and an unknown
	// length would make the transport send it chunked.
	hreq.ContentLength = form.size()
	hreq.Header.Set("Content-Type", form.contentType)

	resp, data, err := c.send(hreq)
	// Whatever happened, stop reading the caller's File now.
	_ = body.Close()
	if err != nil {
		// The file's own failure explains why the transport gave up. (A 2xx
		// stands even so: the job was accepted and is billed.)
		if ferr := body.fileErr(); ferr != nil {
			return nil, fmt.Errorf("elevenlabs: convert: %w", ferr)
		}
		return nil, fmt.Errorf("elevenlabs: convert: %w", err)
	}
	var ack struct {
		Message         string `json:"message"`
		RequestID       string `json:"request_id"`
		TranscriptionID string `json:"transcription_id"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, fmt.Errorf("elevenlabs: convert: decode %d response: %w", resp.StatusCode, err)
	}
	return &ConvertResponse{
		Message:               ack.Message,
		RequestID:             ack.RequestID,
		TranscriptionID:       ack.TranscriptionID,
		Raw:                   json.RawMessage(data),
		RequestIDHeader:       resp.Header.Get("request-id"),
		ConcurrentRequests:    headerInt(resp.Header, "current-concurrent-requests"),
		MaxConcurrentRequests: headerInt(resp.Header, "maximum-concurrent-requests"),
	}, nil
}

// GetTranscript fetches a finished transcript (single or multichannel; see
// ParseTranscript). A 404 matches ErrNotFound.
func (c *Client) GetTranscript(ctx context.Context, transcriptionID string) (json.RawMessage, error) {
	u, err := c.transcriptURL(transcriptionID)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: get transcript: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: get transcript: %w", err)
	}
	_, data, err := c.send(hreq)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: get transcript %s: %w", transcriptionID, err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("elevenlabs: get transcript %s: response is not JSON", transcriptionID)
	}
	return json.RawMessage(data), nil
}

// DeleteTranscript deletes a stored transcript. Any 2xx is success, whatever
// its body. A 404 matches ErrNotFound.
func (c *Client) DeleteTranscript(ctx context.Context, transcriptionID string) error {
	u, err := c.transcriptURL(transcriptionID)
	if err != nil {
		return fmt.Errorf("elevenlabs: delete transcript: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("elevenlabs: delete transcript: %w", err)
	}
	if _, _, err := c.send(hreq); err != nil {
		return fmt.Errorf("elevenlabs: delete transcript %s: %w", transcriptionID, err)
	}
	return nil
}

func (c *Client) transcriptURL(id string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("%w: empty transcription id", ErrInvalidRequest)
	}
	return c.base + "/v1/speech-to-text/transcripts/" + url.PathEscape(id), nil
}

// send performs hreq and reads the body: the bytes of a 2xx answer, or an
// *APIError for anything else.
func (c *Client) send(hreq *http.Request) (*http.Response, []byte, error) {
	hreq.Header.Set("xi-api-key", c.key)
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.ua)
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A partial error body still says what went wrong; ignore read errors.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
		return resp, nil, newAPIError(resp, body, c.now(), c.key)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return resp, nil, fmt.Errorf("read %d response: %w", resp.StatusCode, err)
	}
	if int64(len(body)) > c.maxResp {
		return resp, nil, fmt.Errorf("%d response is larger than %d bytes", resp.StatusCode, c.maxResp)
	}
	if len(bytes.TrimSpace(body)) == 0 && hreq.Method != http.MethodDelete {
		return resp, nil, fmt.Errorf("%d response has an empty body", resp.StatusCode)
	}
	return resp, body, nil
}

func headerInt(h http.Header, key string) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(key)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
