package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
)

// apiError is an error answer. Its body has the documented shape
// (https://elevenlabs.io/docs/eleven-api/resources/errors):
//
//	{"detail":{"type","code","message","status","request_id","param"}}
//
// where status is the legacy copy of code and param is null unless one
// parameter is to blame.
type apiError struct {
	status  int
	typ     string
	code    string
	message string
	param   string
	// legacy is detail.status when it differs from code, as on the 429s
	// (too_many_concurrent_requests / concurrent_limit_exceeded).
	legacy string
	// html sends a proxy's HTML error page instead of the JSON body, as a
	// load balancer in front of the API does on 502 and 504.
	html bool
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// invalid is a parameter validation error: 422 validation_error /
// invalid_parameters, as in the documented keyterms example.
func invalid(param, message string) *apiError {
	return &apiError{
		status: http.StatusUnprocessableEntity, typ: "validation_error", code: "invalid_parameters",
		message: message, param: param,
	}
}

type errorDetail struct {
	Type      string  `json:"type"`
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	Status    string  `json:"status"`
	RequestID string  `json:"request_id"`
	Param     *string `json:"param"`
}

func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	if e.html {
		w.Header().Set("request-id", requestID)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(e.status)
		title := itoa(e.status) + " " + http.StatusText(e.status)
		_, _ = w.Write([]byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
			title + "</h1></center>\r\n</body>\r\n</html>\r\n"))
		return
	}
	d := errorDetail{Type: e.typ, Code: e.code, Message: e.message, Status: e.code, RequestID: requestID}
	if e.legacy != "" {
		d.Status = e.legacy
	}
	if e.param != "" {
		p := e.param
		d.Param = &p
	}
	w.Header().Set("request-id", requestID)
	writeJSON(w, e.status, map[string]errorDetail{"detail": d})
}

// newRequestID looks like the API's: 32 lowercase hex digits.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newTranscriptionID looks like the API's: 20 letters and digits.
func newTranscriptionID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		// 256 % 62 != 0, so this is slightly biased; harmless for ids.
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}

func itoa(n int) string { return strconv.Itoa(n) }
