package elevenlabs_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

func TestConvertDecodesErrors(t *testing.T) {
	t.Parallel()
	longHTML := "<html><body>" + strings.Repeat("gateway trouble ", 200) + "</body></html>"
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		check  func(t *testing.T, e *elevenlabs.APIError)
	}{
		{
			name:   "422NewShape",
			status: 422,
			body: `{"detail":{"type":"validation_error","code":"invalid_parameters","status":"invalid_parameters",` +
				`"message":"Keyterms are only supported by scribe_v2","request_id":"req_9","param":"keyterms"}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "validation_error", e.Type)
				require.Equal(t, "invalid_parameters", e.Code)
				require.Equal(t, "keyterms", e.Param)
				require.Equal(t, "req_9", e.RequestID)
				require.Equal(t, "elevenlabs: 422 validation_error/invalid_parameters: "+
					"Keyterms are only supported by scribe_v2 (param keyterms; request_id req_9)", e.Error())
				require.False(t, e.Temporary())
			},
		},
		{
			name:   "LegacyShape",
			status: 400,
			header: map[string]string{"request-id": "hdr_7"},
			body:   `{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota."}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "quota_exceeded", e.Code, "legacy status becomes the code")
				require.Empty(t, e.Type)
				require.Equal(t, "hdr_7", e.RequestID, "the header stands in for a missing request_id")
				require.Equal(t, "elevenlabs: 400 quota_exceeded: This request exceeds your quota. (request_id hdr_7)", e.Error())
				require.False(t, e.Temporary())
			},
		},
		{
			name:   "FastAPI422",
			status: 422,
			body: `{"detail":[{"loc":["body","model_id"],"msg":"Field required","type":"missing"},` +
				`{"loc":["body","num_speakers"],"msg":"Input should be less than or equal to 32","type":"less_than_equal"}]}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "validation_error", e.Type)
				require.Equal(t, "missing", e.Code)
				require.Equal(t, "model_id", e.Param)
				require.Equal(t, "body.model_id: Field required; body.num_speakers: Input should be less than or equal to 32", e.Message)
			},
		},
		{
			name:   "429TooManyConcurrentLegacy",
			status: 429,
			header: map[string]string{
				"retry-after-ms":              "1500",
				"Retry-After":                 "9", // retry-after-ms wins
				"current-concurrent-requests": "10",
				"maximum-concurrent-requests": "10",
			},
			body: `{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests."}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.True(t, e.TooManyConcurrent())
				require.True(t, e.Temporary())
				require.Equal(t, 1500*time.Millisecond, e.RetryAfter)
				require.Equal(t, 10, e.ConcurrentRequests)
				require.Equal(t, 10, e.MaxConcurrentRequests)
			},
		},
		{
			name:   "429ConcurrentLimitNewShapeRetryAfterDate",
			status: 429,
			header: map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)},
			body:   `{"detail":{"type":"rate_limit_error","code":"concurrent_limit_exceeded","message":"Slow down."}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.True(t, e.TooManyConcurrent())
				// HTTP dates have whole seconds, and the test takes a moment.
				require.InDelta(t, 90*time.Second, e.RetryAfter, float64(5*time.Second))
			},
		},
		{
			name:   "429SystemBusy",
			status: 429,
			header: map[string]string{"Retry-After": "7", "current-concurrent-requests": "2", "maximum-concurrent-requests": "2"},
			body:   `{"detail":{"type":"rate_limit_error","code":"system_busy","message":"The system is busy."}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.False(t, e.TooManyConcurrent(), "the code says load, whatever the headers")
				require.True(t, e.Temporary())
				require.Equal(t, 7*time.Second, e.RetryAfter)
			},
		},
		{
			name:   "429NoCodeHeadersAtLimit",
			status: 429,
			header: map[string]string{"current-concurrent-requests": "5", "maximum-concurrent-requests": "5"},
			body:   `Too Many Requests`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.True(t, e.TooManyConcurrent())
				require.Zero(t, e.RetryAfter)
			},
		},
		{
			name:   "500HTML",
			status: 500,
			header: map[string]string{"Content-Type": "text/html"},
			body:   "<html>\n<body><h1>502 Bad Gateway</h1></body>\n</html>\n",
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "<html> <body><h1>502 Bad Gateway</h1></body> </html>", e.Message)
				require.Empty(t, e.Code)
				require.True(t, e.Temporary())
				require.False(t, e.TooManyConcurrent())
				require.Equal(t, "elevenlabs: 500: <html> <body><h1>502 Bad Gateway</h1></body> </html>", e.Error())
			},
		},
		{
			name:   "503LongHTMLIsTruncated",
			status: 503,
			body:   longHTML,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.True(t, strings.HasPrefix(e.Message, "<html><body>gateway trouble"))
				require.True(t, strings.HasSuffix(e.Message, "…"))
				require.LessOrEqual(t, len(e.Message), 512+len("…"))
			},
		},
		{
			name:   "401EmptyBody",
			status: 401,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Empty(t, e.Message)
				require.Equal(t, "elevenlabs: 401: unauthorized", e.Error())
				require.False(t, e.Temporary())
			},
		},
		{
			name:   "401EchoingTheKey",
			status: 401,
			body:   `{"detail":{"status":"invalid_api_key","message":"Invalid API key: ` + testKey + `"}}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "invalid_api_key", e.Code)
				require.Equal(t, "Invalid API key: [redacted]", e.Message)
			},
		},
		{
			name:   "409IsTemporary",
			status: 409,
			body:   `{"detail":"conflict"}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "conflict", e.Message)
				require.True(t, e.Temporary())
			},
		},
		{
			name:   "408IsTemporaryAndRetryAfterZero",
			status: 408,
			header: map[string]string{"Retry-After": "0", "retry-after-ms": "soon"},
			body:   `{"message":"timeout"}`,
			check: func(t *testing.T, e *elevenlabs.APIError) {
				require.Equal(t, "timeout", e.Message)
				require.True(t, e.Temporary())
				require.Zero(t, e.RetryAfter)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, &recorder{status: tt.status, header: tt.header, body: tt.body})
			_, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{ModelID: "scribe_v2", SourceURL: "https://x"})
			var apiErr *elevenlabs.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.Status)
			require.False(t, errors.Is(err, elevenlabs.ErrNotFound))
			require.NotContains(t, err.Error(), testKey)
			tt.check(t, apiErr)
		})
	}
}

func TestAPIErrorIsNotFoundOnlyFor404(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, &elevenlabs.APIError{Status: 404}, elevenlabs.ErrNotFound)
	require.NotErrorIs(t, &elevenlabs.APIError{Status: 410}, elevenlabs.ErrNotFound)
}
