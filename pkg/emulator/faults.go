package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Faults are the failures the emulator injects, so that the fault suite can
// provoke everything scribeq must survive. Rates are probabilities in
// [0, 1] drawn from one RNG seeded by Config.Seed; the zero value injects
// nothing. A zero duration takes the default given on its field.
//
// Convert faults are drawn once per call, when it would be accepted: a
// change made with SetFaults (PUT /emulator/faults) applies to calls that
// arrive afterwards, and a job already accepted keeps the webhook faults it
// drew. Transcript faults are drawn per GET (a lost transcript stays lost).
//
// In JSON (PUT/GET /emulator/faults) fields are snake_case, durations are
// strings such as "1.5s", and Status keys are strings: {"status":{"500":0.05}}.
type Faults struct {
	// Refusals. A convert call that would have been accepted is answered
	// with an error instead: no job starts, nothing is billed. One draw
	// picks among all of them, so their rates add up to at most 1.

	// Status maps an HTTP status (400–599) to the rate of calls answered
	// with it, e.g. {500: 0.05, 503: 0.01}. Bodies have the API's JSON
	// error shape, except 502 and 504, which are a proxy's HTML page. 503
	// carries the retry headers; 429 is answered as SystemBusy.
	Status map[int]float64
	// TooManyConcurrent answers 429 concurrent_limit_exceeded (legacy
	// status too_many_concurrent_requests) with current-/maximum-
	// concurrent-requests saying the plan is full: the maximum is
	// Config.MaxConcurrent, or 75 (the Scale plan) when there is none.
	TooManyConcurrent float64
	// SystemBusy answers 429 rate_limit_exceeded (legacy status
	// system_busy) asking to wait RetryAfter: in Retry-After (seconds,
	// rounded up), in retry-after-ms, or in both, chosen at random.
	SystemBusy float64
	// RetryAfter is the wait that SystemBusy and 503 answers ask for.
	// Default 1s.
	RetryAfter time.Duration

	// Accepted-call faults. The job starts (it is billed, in the ledger,
	// and its webhook will be sent); only the answer suffers.

	// ResetAfterAccept closes the connection (TCP reset) instead of
	// answering: billed, but the answer is lost.
	ResetAfterAccept float64
	// Stall holds the answer back for StallFor (default 30s) after the job
	// is accepted; a client that gives up first never sees the answer.
	Stall    float64
	StallFor time.Duration
	// WebhookFirst delivers the webhook, and waits for the receiver's
	// answer, before the convert answer is written. The job skips its
	// processing time, and is never dropped, late or reordered.
	WebhookFirst float64

	// Webhook faults (webhook=true jobs).

	// DropWebhooks never sends the webhook; the transcript stays
	// retrievable by GET, as after a delivery the receiver missed.
	DropWebhooks float64
	// DuplicateWebhooks sends the webhook twice; the second POST has its
	// own event_timestamp and a valid signature. It goes DuplicateGap
	// after the first is sent (default 0: both at once).
	DuplicateWebhooks float64
	DuplicateGap      time.Duration
	// LateWebhooks adds a delay drawn from [LateMin, LateMax] (defaults 5s
	// and 30s) between the end of processing and the webhook.
	LateWebhooks     float64
	LateMin, LateMax time.Duration
	// ReorderWebhooks adds a delay drawn from [0, ReorderJitter] (default
	// 1s), so that later jobs' webhooks can arrive first.
	ReorderWebhooks float64
	ReorderJitter   time.Duration
	// MetadataAsString sends webhook_metadata as a JSON string holding the
	// object instead of the object.
	MetadataAsString float64

	// Transcript faults (GET and DELETE /v1/speech-to-text/transcripts/{id}).

	// LostTranscripts answers 404 for this share of finished transcripts,
	// for good: "lost at ElevenLabs". Drawn at a transcript's first GET or
	// DELETE.
	LostTranscripts float64
	// TranscriptErrors answers a GET with 500, 502 or 503 (chosen at
	// random) instead of the transcript.
	TranscriptErrors float64
}

// Defaults of Faults' durations.
const (
	DefaultRetryAfter    = time.Second
	DefaultStallFor      = 30 * time.Second
	DefaultLateMin       = 5 * time.Second
	DefaultLateMax       = 30 * time.Second
	DefaultReorderJitter = time.Second
	// reportedMaxConcurrent is the plan the headers of an injected 429
	// claim when the emulator has no limit of its own.
	reportedMaxConcurrent = 75
)

func (f Faults) withDefaults() Faults {
	f.Status = cloneStatus(f.Status)
	if f.RetryAfter == 0 {
		f.RetryAfter = DefaultRetryAfter
	}
	if f.StallFor == 0 {
		f.StallFor = DefaultStallFor
	}
	if f.LateMin == 0 && f.LateMax == 0 {
		f.LateMin, f.LateMax = DefaultLateMin, DefaultLateMax
	}
	if f.LateMax == 0 {
		f.LateMax = max(f.LateMin, DefaultLateMax)
	}
	if f.ReorderJitter == 0 {
		f.ReorderJitter = DefaultReorderJitter
	}
	return f
}

func cloneStatus(m map[int]float64) map[int]float64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[int]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// validate names the bad field; errors read "Faults.X ...".
func (f Faults) validate() error {
	rates := []struct {
		name string
		v    float64
	}{
		{"TooManyConcurrent", f.TooManyConcurrent}, {"SystemBusy", f.SystemBusy},
		{"ResetAfterAccept", f.ResetAfterAccept}, {"Stall", f.Stall}, {"WebhookFirst", f.WebhookFirst},
		{"DropWebhooks", f.DropWebhooks}, {"DuplicateWebhooks", f.DuplicateWebhooks},
		{"LateWebhooks", f.LateWebhooks}, {"ReorderWebhooks", f.ReorderWebhooks},
		{"MetadataAsString", f.MetadataAsString}, {"LostTranscripts", f.LostTranscripts},
		{"TranscriptErrors", f.TranscriptErrors},
	}
	for _, r := range rates {
		if !validRate(r.v) {
			return fmt.Errorf("Faults.%s %g must be between 0 and 1", r.name, r.v)
		}
	}
	refusals := f.TooManyConcurrent + f.SystemBusy
	for _, st := range sortedStatuses(f.Status) {
		v := f.Status[st]
		if st < 400 || st > 599 {
			return fmt.Errorf("Faults.Status[%d]: only 4xx and 5xx statuses can be injected", st)
		}
		if !validRate(v) {
			return fmt.Errorf("Faults.Status[%d] %g must be between 0 and 1", st, v)
		}
		refusals += v
	}
	if refusals > 1+1e-9 {
		return fmt.Errorf("Faults.Status, TooManyConcurrent and SystemBusy add up to %g; at most 1", refusals)
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"RetryAfter", f.RetryAfter}, {"StallFor", f.StallFor}, {"DuplicateGap", f.DuplicateGap},
		{"LateMin", f.LateMin}, {"LateMax", f.LateMax}, {"ReorderJitter", f.ReorderJitter},
	}
	for _, d := range durations {
		if d.v < 0 {
			return fmt.Errorf("Faults.%s %s must be >= 0", d.name, d.v)
		}
	}
	if f.LateMax < f.LateMin {
		return fmt.Errorf("Faults.LateMax %s must be >= LateMin %s", f.LateMax, f.LateMin)
	}
	return nil
}

func validRate(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 1 }

func sortedStatuses(m map[int]float64) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// faultsJSON is Faults on the wire: durations as strings.
type faultsJSON struct {
	Status            map[int]float64 `json:"status,omitempty"`
	TooManyConcurrent float64         `json:"too_many_concurrent"`
	SystemBusy        float64         `json:"system_busy"`
	RetryAfter        jsonDuration    `json:"retry_after"`
	ResetAfterAccept  float64         `json:"reset_after_accept"`
	Stall             float64         `json:"stall"`
	StallFor          jsonDuration    `json:"stall_for"`
	WebhookFirst      float64         `json:"webhook_first"`
	DropWebhooks      float64         `json:"drop_webhooks"`
	DuplicateWebhooks float64         `json:"duplicate_webhooks"`
	DuplicateGap      jsonDuration    `json:"duplicate_gap"`
	LateWebhooks      float64         `json:"late_webhooks"`
	LateMin           jsonDuration    `json:"late_min"`
	LateMax           jsonDuration    `json:"late_max"`
	ReorderWebhooks   float64         `json:"reorder_webhooks"`
	ReorderJitter     jsonDuration    `json:"reorder_jitter"`
	MetadataAsString  float64         `json:"metadata_as_string"`
	LostTranscripts   float64         `json:"lost_transcripts"`
	TranscriptErrors  float64         `json:"transcript_errors"`
}

// MarshalJSON writes f with snake_case names and durations as strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Status: f.Status, TooManyConcurrent: f.TooManyConcurrent, SystemBusy: f.SystemBusy,
		RetryAfter: jsonDuration(f.RetryAfter), ResetAfterAccept: f.ResetAfterAccept,
		Stall: f.Stall, StallFor: jsonDuration(f.StallFor), WebhookFirst: f.WebhookFirst,
		DropWebhooks: f.DropWebhooks, DuplicateWebhooks: f.DuplicateWebhooks,
		DuplicateGap: jsonDuration(f.DuplicateGap), LateWebhooks: f.LateWebhooks,
		LateMin: jsonDuration(f.LateMin), LateMax: jsonDuration(f.LateMax),
		ReorderWebhooks: f.ReorderWebhooks, ReorderJitter: jsonDuration(f.ReorderJitter),
		MetadataAsString: f.MetadataAsString, LostTranscripts: f.LostTranscripts,
		TranscriptErrors: f.TranscriptErrors,
	})
}

// UnmarshalJSON reads what MarshalJSON writes. Unknown fields are an error,
// so that a misspelt knob does not silently inject nothing; absent fields
// are zero.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*f = Faults{
		Status: w.Status, TooManyConcurrent: w.TooManyConcurrent, SystemBusy: w.SystemBusy,
		RetryAfter: time.Duration(w.RetryAfter), ResetAfterAccept: w.ResetAfterAccept,
		Stall: w.Stall, StallFor: time.Duration(w.StallFor), WebhookFirst: w.WebhookFirst,
		DropWebhooks: w.DropWebhooks, DuplicateWebhooks: w.DuplicateWebhooks,
		DuplicateGap: time.Duration(w.DuplicateGap), LateWebhooks: w.LateWebhooks,
		LateMin: time.Duration(w.LateMin), LateMax: time.Duration(w.LateMax),
		ReorderWebhooks: w.ReorderWebhooks, ReorderJitter: time.Duration(w.ReorderJitter),
		MetadataAsString: w.MetadataAsString, LostTranscripts: w.LostTranscripts,
		TranscriptErrors: w.TranscriptErrors,
	}
	return nil
}

// jsonDuration is a time.Duration written as "1.5s"; it also reads a plain
// number as nanoseconds, which is how encoding/json writes a Duration.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("a duration is a string such as \"1.5s\": %w", err)
	}
	*d = jsonDuration(n)
	return nil
}

// plan is what one accepted (or refused) convert call drew.
type plan struct {
	refusal *apiError
	// headers go on the refusal's answer.
	headers http.Header

	reset, stall, first bool
	drop, duplicate     bool
	metadataAsString    bool
	stallFor, dupGap    time.Duration
	extra               time.Duration // late + reorder delay before the webhook
	names               []string      // the faults drawn, for the ledger
}

// chance draws a rate; s.mu held. Rates of 0 and 1 use no randomness, so a
// test setting one knob to 1 does not shift the draws of the others.
func (s *Server) chance(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return s.rng.Float64() < p
}

// between draws a duration in [lo, hi]; s.mu held.
func (s *Server) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// drawRefusal picks at most one refusal for a convert call; s.mu held.
func (s *Server) drawRefusal() *plan {
	f := s.faults
	type option struct {
		rate   float64
		status int // 0: too many concurrent
		name   string
	}
	opts := []option{{f.TooManyConcurrent, 0, "too_many_concurrent"}, {f.SystemBusy, http.StatusTooManyRequests, "system_busy"}}
	total := f.TooManyConcurrent + f.SystemBusy
	for _, st := range sortedStatuses(f.Status) {
		opts = append(opts, option{f.Status[st], st, "status_" + strconv.Itoa(st)})
		total += f.Status[st]
	}
	if total <= 0 {
		return nil
	}
	u := s.rng.Float64()
	cum := 0.0
	for _, o := range opts {
		if o.rate <= 0 {
			continue
		}
		cum += o.rate
		if u >= cum {
			continue
		}
		p := &plan{headers: http.Header{}, names: []string{o.name}}
		switch {
		case o.status == 0:
			limit := s.cfg.MaxConcurrent
			if limit == 0 {
				limit = reportedMaxConcurrent
			}
			p.headers.Set("current-concurrent-requests", itoa(max(limit, s.slots)))
			p.headers.Set("maximum-concurrent-requests", itoa(limit))
			p.refusal = tooManyConcurrent(limit)
			s.stats.TooManyConcurrent++
		case o.status == http.StatusTooManyRequests:
			s.setRetryHeaders(p.headers, true)
			p.refusal = &apiError{
				status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded",
				legacy: "system_busy", message: "The system is experiencing heavy traffic, please try again later. (emulator fault)",
			}
			s.stats.SystemBusy++
		default:
			if o.status == http.StatusServiceUnavailable {
				s.setRetryHeaders(p.headers, false)
			}
			p.refusal = statusError(o.status)
		}
		s.stats.Injected[o.name]++
		return p
	}
	return nil
}

// setRetryHeaders asks for RetryAfter; s.mu held. With random, the 429's
// answer carries one of the two headers or both, so clients are tested on
// each.
func (s *Server) setRetryHeaders(h http.Header, random bool) {
	d := s.faults.RetryAfter
	secs := strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	which := 0
	if random {
		which = s.rng.IntN(3)
	}
	if which != 2 {
		h.Set("Retry-After", secs)
	}
	if which != 1 {
		h.Set("retry-after-ms", ms)
	}
}

func tooManyConcurrent(limit int) *apiError {
	return &apiError{
		status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "concurrent_limit_exceeded",
		legacy: "too_many_concurrent_requests",
		message: "Too many concurrent requests: " + itoa(limit) +
			" are already being processed. Wait for one to finish.",
	}
}

// statusError is an injected error answer with status.
func statusError(status int) *apiError {
	const tag = " (emulator fault)"
	switch status {
	case http.StatusBadRequest:
		return &apiError{status: status, typ: "validation_error", code: "invalid_request", message: "The request is invalid." + tag}
	case http.StatusUnauthorized:
		return &apiError{status: status, typ: "authentication_error", code: "invalid_api_key", message: "Invalid API key" + tag}
	case http.StatusForbidden:
		return &apiError{status: status, typ: "authorization_error", code: "missing_permissions", message: "The API key lacks the speech_to_text permission." + tag}
	case http.StatusRequestTimeout:
		return &apiError{status: status, typ: "request_timeout", code: "request_timeout", message: "The request timed out." + tag}
	case http.StatusUnprocessableEntity:
		return &apiError{status: status, typ: "validation_error", code: "invalid_parameters", message: "The audio could not be processed." + tag}
	case http.StatusInternalServerError:
		return &apiError{status: status, typ: "internal_server_error", code: "internal_server_error", message: "An internal error occurred." + tag}
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return &apiError{status: status, html: true}
	case http.StatusServiceUnavailable:
		return &apiError{status: status, typ: "service_unavailable", code: "service_unavailable", message: "The service is temporarily unavailable." + tag}
	}
	code := snake(http.StatusText(status))
	if code == "" {
		code = "error_" + itoa(status)
	}
	return &apiError{status: status, typ: "error", code: code, message: "Injected error " + itoa(status) + "." + tag}
}

// snake turns "Payment Required" into "payment_required".
func snake(s string) string {
	var b []byte
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case len(b) > 0 && b[len(b)-1] != '_':
			b = append(b, '_')
		}
	}
	return string(bytes.TrimRight(b, "_"))
}

// drawAccepted draws the faults of an accepted call; s.mu held.
func (s *Server) drawAccepted(webhook bool) *plan {
	f := s.faults
	p := &plan{}
	mark := func(name string) {
		p.names = append(p.names, name)
		s.stats.Injected[name]++
	}
	if webhook && s.chance(f.WebhookFirst) {
		p.first = true
		mark("webhook_first")
	}
	if s.chance(f.Stall) {
		p.stall, p.stallFor = true, f.StallFor
		mark("stall")
	}
	if s.chance(f.ResetAfterAccept) {
		p.reset = true
		mark("reset_after_accept")
	}
	if !webhook {
		return p
	}
	if !p.first && s.chance(f.DropWebhooks) {
		p.drop = true
		mark("drop_webhook")
		return p
	}
	if s.chance(f.DuplicateWebhooks) {
		p.duplicate, p.dupGap = true, f.DuplicateGap
		mark("duplicate_webhook")
	}
	if s.chance(f.MetadataAsString) {
		p.metadataAsString = true
		mark("metadata_as_string")
	}
	if p.first {
		return p
	}
	if s.chance(f.LateWebhooks) {
		p.extra += s.between(f.LateMin, f.LateMax)
		mark("late_webhook")
	}
	if s.chance(f.ReorderWebhooks) {
		p.extra += s.between(0, f.ReorderJitter)
		mark("reorder_webhook")
	}
	return p
}
