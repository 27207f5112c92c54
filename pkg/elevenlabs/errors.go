package elevenlabs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound matches (errors.Is) an *APIError with status 404, which is
// what GetTranscript and DeleteTranscript return for an unknown id.
var ErrNotFound = errors.New("elevenlabs: not found")

// APIError is a non-2xx answer, decoded from any of the body shapes the API
// uses: {"detail":{type,code,message,status,request_id,param}}, the legacy
// {"detail":{status,message}}, FastAPI's 422 {"detail":[{loc,msg,type}]},
// and non-JSON bodies (a truncated snippet goes in Message).
type APIError struct {
	Status    int
	Type      string
	Code      string // detail.code, or the legacy detail.status
	Message   string
	Param     string
	RequestID string // detail.request_id, else the request-id header
	// RetryAfter comes from retry-after-ms, else Retry-After (seconds or an
	// HTTP date); 0 if none.
	RetryAfter time.Duration
	// From the current-concurrent-requests / maximum-concurrent-requests
	// headers; 0 if absent.
	ConcurrentRequests, MaxConcurrentRequests int

	detailStatus string
}

// Error reads like "elevenlabs: 422 validation_error/invalid_parameters:
// <message> (param keyterms; request_id r1)". It never holds the API key.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "elevenlabs: %d", e.Status)
	switch {
	case e.Type != "" && e.Code != "":
		b.WriteString(" " + e.Type + "/" + e.Code)
	case e.Type != "":
		b.WriteString(" " + e.Type)
	case e.Code != "":
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": ")
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(strings.ToLower(http.StatusText(e.Status)))
	}
	var extra []string
	if e.Param != "" {
		extra = append(extra, "param "+e.Param)
	}
	if e.RequestID != "" {
		extra = append(extra, "request_id "+e.RequestID)
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, "; ") + ")")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Temporary reports whether the same request may succeed later: 408, 409,
// 429 and 5xx, the statuses the official SDKs retry.
func (e *APIError) Temporary() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}

// TooManyConcurrent reports a 429 caused by our own in-flight jobs (wait for
// one to finish) rather than by system load (back off). Without a code, the
// concurrency headers decide.
func (e *APIError) TooManyConcurrent() bool {
	if e.Status != http.StatusTooManyRequests {
		return false
	}
	for _, c := range []string{e.Code, e.detailStatus} {
		switch c {
		case "too_many_concurrent_requests", "concurrent_limit_exceeded":
			return true
		}
	}
	if e.Code == "" && e.detailStatus == "" {
		return e.MaxConcurrentRequests > 0 && e.ConcurrentRequests >= e.MaxConcurrentRequests
	}
	return false
}

const maxSnippet = 512

// newAPIError decodes resp and its (possibly truncated) body. key is
// scrubbed from every text field in case a body echoes it.
func newAPIError(resp *http.Response, body []byte, now time.Time, key string) *APIError {
	e := &APIError{
		Status:                resp.StatusCode,
		RetryAfter:            retryAfter(resp.Header, now),
		ConcurrentRequests:    headerInt(resp.Header, "current-concurrent-requests"),
		MaxConcurrentRequests: headerInt(resp.Header, "maximum-concurrent-requests"),
	}
	if !e.decodeJSON(body) {
		e.Message = snippet(body)
	}
	if e.Code == "" {
		e.Code = e.detailStatus
	}
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("request-id")
	}
	if key != "" {
		for _, s := range []*string{&e.Type, &e.Code, &e.Message, &e.Param, &e.RequestID, &e.detailStatus} {
			*s = strings.ReplaceAll(*s, key, "[redacted]")
		}
	}
	return e
}

// decodeJSON fills e from a JSON error body and reports whether it
// recognised one.
func (e *APIError) decodeJSON(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	detail := bytes.TrimSpace(top["detail"])
	switch {
	case len(detail) > 0 && detail[0] == '{':
		var d map[string]json.RawMessage
		if json.Unmarshal(detail, &d) != nil {
			return false
		}
		e.Type, e.Code, e.Message = text(d["type"]), text(d["code"]), text(d["message"])
		e.Param, e.RequestID, e.detailStatus = text(d["param"]), text(d["request_id"]), text(d["status"])
		return true
	case len(detail) > 0 && detail[0] == '[':
		return e.decodeValidation(detail)
	case len(detail) > 0 && detail[0] == '"':
		e.Message = text(detail)
		return true
	}
	// Not the documented shape: take a top-level message if there is one.
	for _, k := range []string{"message", "error"} {
		if m := text(top[k]); m != "" {
			e.Message = m
			return true
		}
	}
	return false
}

// decodeValidation reads FastAPI's [{loc:[...], msg, type}] list.
func (e *APIError) decodeValidation(detail []byte) bool {
	var items []struct {
		Loc  []json.RawMessage `json:"loc"`
		Msg  string            `json:"msg"`
		Type string            `json:"type"`
	}
	if json.Unmarshal(detail, &items) != nil {
		return false
	}
	e.Type = "validation_error"
	msgs := make([]string, 0, len(items))
	for i, it := range items {
		loc := make([]string, 0, len(it.Loc))
		for _, l := range it.Loc {
			loc = append(loc, text(l))
		}
		// loc starts with where the value was: body, query, path, header.
		field := loc
		if len(field) > 1 {
			field = field[1:]
		}
		if i == 0 {
			e.Code, e.Param = it.Type, strings.Join(field, ".")
		}
		if len(loc) > 0 {
			msgs = append(msgs, strings.Join(loc, ".")+": "+it.Msg)
		} else {
			msgs = append(msgs, it.Msg)
		}
	}
	e.Message = strings.Join(msgs, "; ")
	return true
}

// text renders a JSON string or number as text; anything else as "".
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// snippet makes a short one-line message of a non-JSON body (an HTML error
// page from a proxy, say).
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if len(s) <= maxSnippet {
		return s
	}
	s = s[:maxSnippet]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// retryAfter follows the SDKs' order: retry-after-ms, then Retry-After as
// seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		ms, err := strconv.ParseFloat(v, 64)
		if err == nil && ms > 0 && ms < float64(math.MaxInt64/int64(time.Millisecond)) {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
