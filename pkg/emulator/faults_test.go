package emulator_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
)

// webhookServer starts an emulator that delivers to rc with faults f.
func webhookServer(t *testing.T, rc *receiver, cfg emulator.Config) (*emulator.Server, string) {
	t.Helper()
	cfg.WebhookURL, cfg.WebhookSecret = rc.url, testSecret
	return start(t, cfg)
}

// convertJob sends a webhook=true call for jobID (source_url input: 10 s,
// one slot).
func convertJob(ctx context.Context, t *testing.T, url, jobID string) (*elevenlabs.ConvertResponse, error) {
	t.Helper()
	return client(t, url).Convert(ctx, &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", SourceURL: "https://example.com/" + jobID + ".mp3", Webhook: true,
		WebhookMetadata: map[string]any{"job_id": jobID},
	})
}

func jobOf(t *testing.T, d delivery) string {
	t.Helper()
	wh, err := elevenlabs.ParseWebhook(d.body)
	require.NoError(t, err)
	return elevenlabs.MetadataString(wh.Data.WebhookMetadata, "job_id")
}

// detail decodes an error body's detail.
func detail(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var top map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &top), "%s", body)
	return top["detail"]
}

// rawWAV is a WAV header declaring secs of silent 16-bit PCM at 100 Hz, so
// long durations cost few bytes.
func rawWAV(secs float64, channels int) []byte {
	const rate = 100
	data := int(secs*rate) * channels * 2
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + data))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(channels))
	le(uint32(rate))
	le(uint32(rate * channels * 2))
	le(uint16(channels * 2))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(data))
	b.Write(make([]byte, data))
	return b.Bytes()
}

func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults emulator.Faults
		want   string
	}{
		{"RateAboveOne", emulator.Faults{DropWebhooks: 1.5}, "Faults.DropWebhooks"},
		{"NaN", emulator.Faults{Stall: math.NaN()}, "Faults.Stall"},
		{"StatusNotAnError", emulator.Faults{Status: map[int]float64{200: 0.1}}, "Faults.Status[200]"},
		{"StatusRateNegative", emulator.Faults{Status: map[int]float64{500: -0.1}}, "Faults.Status[500]"},
		{"RefusalsAboveOne", emulator.Faults{Status: map[int]float64{500: 0.6}, SystemBusy: 0.5}, "Faults.Status, TooManyConcurrent and SystemBusy add up to"},
		{"NegativeDuration", emulator.Faults{StallFor: -time.Second}, "Faults.StallFor"},
		{"LateMaxBelowMin", emulator.Faults{LateMin: 2 * time.Second, LateMax: time.Second}, "Faults.LateMax"},
	}
	em, err := emulator.New(emulator.Config{})
	require.NoError(t, err)
	for _, tt := range tests {
		_, err := emulator.New(emulator.Config{Faults: tt.faults})
		require.ErrorContains(t, err, "Config."+tt.want, tt.name)
		require.ErrorContains(t, em.SetFaults(tt.faults), tt.want, tt.name)
	}
	require.Equal(t, emulator.Faults{
		RetryAfter: emulator.DefaultRetryAfter, StallFor: emulator.DefaultStallFor,
		LateMin: emulator.DefaultLateMin, LateMax: emulator.DefaultLateMax, ReorderJitter: emulator.DefaultReorderJitter,
	}, em.Faults(), "a refused SetFaults changes nothing; zero durations take the defaults")
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	f := emulator.Faults{
		Status: map[int]float64{500: 0.05, 503: 0.01}, SystemBusy: 0.02, RetryAfter: 1500 * time.Millisecond,
		DropWebhooks: 0.1, LateMin: time.Second, LateMax: 2 * time.Second, DuplicateGap: 10 * time.Millisecond,
	}
	raw, err := json.Marshal(f)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"retry_after":"1.5s"`)
	require.Contains(t, string(raw), `"status":{"500":0.05,"503":0.01}`)
	require.Contains(t, string(raw), `"drop_webhooks":0.1`)
	var back emulator.Faults
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, f, back)

	require.NoError(t, json.Unmarshal([]byte(`{"stall_for":1000000000}`), &back))
	require.Equal(t, emulator.Faults{StallFor: time.Second}, back, "a number is nanoseconds; absent fields are zero")
	require.ErrorContains(t, json.Unmarshal([]byte(`{"drop_webhook":1}`), &back), "drop_webhook", "a misspelt knob is refused")
	require.Error(t, json.Unmarshal([]byte(`{"stall_for":"soon"}`), &back))
}

func TestStatusFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		typ, code string
		html      bool
		retry     bool
	}{
		{status: 500, typ: "internal_server_error", code: "internal_server_error"},
		{status: 503, typ: "service_unavailable", code: "service_unavailable", retry: true},
		{status: 502, html: true},
		{status: 504, html: true},
		{status: 408, typ: "request_timeout", code: "request_timeout"},
		{status: 422, typ: "validation_error", code: "invalid_parameters"},
		{status: 401, typ: "authentication_error", code: "invalid_api_key"},
		{status: 403, typ: "authorization_error", code: "missing_permissions"},
		{status: 409, typ: "error", code: "conflict"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, http.StatusOK)
			em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{Status: map[int]float64{tt.status: 1}}})
			resp, body := postForm(t, url, testKey, "", []field{
				{"model_id", "scribe_v2"}, {"webhook", "true"}, {"webhook_metadata", `{"job_id":"j1"}`},
			}, filePart{"file", []byte("audio")})
			if tt.html {
				require.Equal(t, tt.status, resp.StatusCode)
				require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
				require.Contains(t, string(body), "<html>")
			} else {
				requireAPIError(t, resp, body, tt.status, tt.typ, tt.code, "")
			}
			if tt.retry {
				require.Equal(t, "1", resp.Header.Get("Retry-After"))
				require.Equal(t, "1000", resp.Header.Get("retry-after-ms"))
			}

			// Our client sees the same status.
			_, err := convertJob(t.Context(), t, url, "j2")
			var apiErr *elevenlabs.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.Status)

			require.NoError(t, em.Close(t.Context()))
			require.Empty(t, rc.deliveries(), "a refused call sends no webhook")
			calls := em.Ledger()
			require.Len(t, calls, 2)
			for _, c := range calls {
				require.False(t, c.Accepted)
				require.Equal(t, tt.status, c.Status)
				require.Empty(t, c.TranscriptionID)
				require.Equal(t, []string{"status_" + strconv.Itoa(tt.status)}, c.Faults)
			}
			st := em.Stats()
			require.Equal(t, 2, st.Calls)
			require.Zero(t, st.Accepted)
			require.Equal(t, 2, st.Refused[tt.status])
			require.Equal(t, 2, st.Injected["status_"+strconv.Itoa(tt.status)])
		})
	}
}

func TestFaultDrawsFollowTheSeed(t *testing.T) {
	t.Parallel()
	faults := emulator.Faults{Status: map[int]float64{500: 0.2, 503: 0.1}, SystemBusy: 0.1}
	run := func(seed uint64) []int {
		_, url := start(t, emulator.Config{Seed: seed, Faults: faults})
		var got []int
		for range 60 {
			resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", "https://example.com/a.mp3"}})
			require.Contains(t, []int{200, 429, 500, 503}, resp.StatusCode, "%s", body)
			got = append(got, resp.StatusCode)
		}
		return got
	}
	a := run(42)
	require.Equal(t, a, run(42), "the same seed draws the same faults")
	require.NotEqual(t, a, run(43))
	count := func(st int) int {
		n := 0
		for _, s := range a {
			if s == st {
				n++
			}
		}
		return n
	}
	require.InDelta(t, 36, count(200), 14)
	require.InDelta(t, 12, count(500), 9)
	require.Positive(t, count(503))
	require.Positive(t, count(429))
}

func TestTooManyConcurrentFault(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{MaxConcurrent: 10, Faults: emulator.Faults{TooManyConcurrent: 1}})
	_, err := convertJob(t.Context(), t, url, "j1")
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusTooManyRequests, apiErr.Status)
	require.Equal(t, "concurrent_limit_exceeded", apiErr.Code)
	require.True(t, apiErr.TooManyConcurrent())
	require.Equal(t, 10, apiErr.ConcurrentRequests, "the headers say the plan is full")
	require.Equal(t, 10, apiErr.MaxConcurrentRequests)

	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", "https://example.com/a.mp3"}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	d := detail(t, body)
	require.Equal(t, "concurrent_limit_exceeded", d["code"])
	require.Equal(t, "too_many_concurrent_requests", d["status"], "the legacy name")
	st := em.Stats()
	require.Equal(t, 2, st.TooManyConcurrent)
	require.Zero(t, st.SystemBusy)
	require.Zero(t, st.Slots, "nothing was accepted")
	require.Zero(t, st.Accepted)

	// Without a limit of its own the emulator claims the Scale plan's 75.
	_, url = start(t, emulator.Config{Faults: emulator.Faults{TooManyConcurrent: 1}})
	resp, _ = postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", "https://example.com/a.mp3"}})
	require.Equal(t, "75", resp.Header.Get("maximum-concurrent-requests"))
	require.Equal(t, "75", resp.Header.Get("current-concurrent-requests"))
}

func TestSystemBusyFault(t *testing.T) {
	t.Parallel()
	em, url := start(t, emulator.Config{Seed: 7, Faults: emulator.Faults{SystemBusy: 1, RetryAfter: 1500 * time.Millisecond}})
	variants := map[string]bool{}
	for range 20 {
		resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", "https://example.com/a.mp3"}})
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		d := detail(t, body)
		require.Equal(t, "rate_limit_exceeded", d["code"])
		require.Equal(t, "system_busy", d["status"])
		require.Empty(t, resp.Header.Get("maximum-concurrent-requests"))
		ra, ms := resp.Header.Get("Retry-After"), resp.Header.Get("retry-after-ms")
		require.True(t, ra != "" || ms != "", "at least one retry header")
		if ra != "" {
			require.Equal(t, "2", ra, "whole seconds, rounded up")
		}
		if ms != "" {
			require.Equal(t, "1500", ms)
		}
		variants[strconv.FormatBool(ra != "")+strconv.FormatBool(ms != "")] = true
	}
	require.Len(t, variants, 3, "Retry-After alone, retry-after-ms alone, and both")

	_, err := client(t, url).Convert(t.Context(), &elevenlabs.ConvertRequest{ModelID: "scribe_v2", SourceURL: "https://example.com/a.mp3"})
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.False(t, apiErr.TooManyConcurrent(), "back off, not wait for a slot")
	require.True(t, apiErr.Temporary())
	require.Contains(t, []time.Duration{1500 * time.Millisecond, 2 * time.Second}, apiErr.RetryAfter)
	require.Equal(t, 21, em.Stats().SystemBusy)
}

func TestResetAfterAccept(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{ResetAfterAccept: 1}})
	_, err := convertJob(t.Context(), t, url, "job-reset")
	require.Error(t, err)
	var apiErr *elevenlabs.APIError
	require.False(t, errors.As(err, &apiErr), "no answer at all, only a broken connection: %v", err)
	require.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF),
		"the connection was reset: %v", err)

	// Billed all the same: the webhook comes.
	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 1)
	require.NoError(t, (&elevenlabs.Verifier{Secrets: []string{testSecret}}).Verify(got[0].header.Get("ElevenLabs-Signature"), got[0].body))
	require.Equal(t, "job-reset", jobOf(t, got[0]))

	calls := em.LedgerFor("job-reset")
	require.Len(t, calls, 1)
	c := calls[0]
	require.True(t, c.Accepted)
	require.True(t, c.AnswerLost)
	require.Equal(t, []string{"reset_after_accept"}, c.Faults)
	require.Equal(t, "delivered", c.Delivery)
	require.True(t, c.AnsweredAt.IsZero())
	require.NotEmpty(t, c.TranscriptionID)

	wh, err := elevenlabs.ParseWebhook(got[0].body)
	require.NoError(t, err)
	tr, err := elevenlabs.ParseTranscript(wh.Data.Transcription)
	require.NoError(t, err)
	require.Equal(t, c.TranscriptionID, tr.TranscriptionID)
	_, err = client(t, url).GetTranscript(t.Context(), c.TranscriptionID)
	require.NoError(t, err, "the transcript is there to fetch")

	st := em.Stats()
	require.Equal(t, 1, st.Accepted)
	require.Equal(t, 1, st.AnswersLost)
	require.Equal(t, JobCountsOf(t, em, "job-reset"), emulator.JobCounts{
		Calls: 1, Accepted: 1, AnswerLost: 1, Webhooks: 1, TranscriptionIDs: []string{c.TranscriptionID},
	})
}

// JobCountsOf returns em's counts for jobID.
func JobCountsOf(t *testing.T, em *emulator.Server, jobID string) emulator.JobCounts {
	t.Helper()
	jc, ok := em.Jobs()[jobID]
	require.True(t, ok, "job %s in the ledger", jobID)
	return jc
}

func TestWebhookFirst(t *testing.T) {
	t.Parallel()
	answered := make(chan struct{})
	arrived := make(chan bool, 1)
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	rc := newHookReceiver(t, http.StatusOK, func(delivery) {
		select {
		case <-answered:
			arrived <- false
		default:
			arrived <- true
		}
		<-release // the convert answer must wait for this acknowledgement
	})
	t.Cleanup(releaseOnce)
	// An hour of processing: webhook-first skips it.
	em, url := webhookServer(t, rc, emulator.Config{WebhookDelay: time.Hour, Faults: emulator.Faults{WebhookFirst: 1}})

	var resp *elevenlabs.ConvertResponse
	var convErr error
	var answeredAt time.Time
	go func() {
		defer close(answered)
		resp, convErr = convertJob(context.Background(), t, url, "job-first")
		answeredAt = time.Now()
	}()
	select {
	case before := <-arrived:
		require.True(t, before, "the webhook arrived before the convert answer")
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook")
	}
	select {
	case <-answered:
		t.Fatal("the convert answer came before the webhook was acknowledged")
	default:
	}
	releaseOnce()
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("no convert answer after the webhook was acknowledged")
	}
	require.NoError(t, convErr)

	got := rc.deliveries()
	require.Len(t, got, 1)
	require.True(t, got[0].at.Before(answeredAt))
	require.NoError(t, (&elevenlabs.Verifier{Secrets: []string{testSecret}}).Verify(got[0].header.Get("ElevenLabs-Signature"), got[0].body))
	wh, err := elevenlabs.ParseWebhook(got[0].body)
	require.NoError(t, err)
	require.Equal(t, resp.RequestID, wh.Data.RequestID)

	c := em.LedgerFor("job-first")[0]
	require.Equal(t, []string{"webhook_first"}, c.Faults)
	require.Equal(t, "delivered", c.Delivery)
	require.False(t, c.AnsweredAt.Before(c.DeliveredAt), "answered %s, delivered %s", c.AnsweredAt, c.DeliveredAt)
	require.NoError(t, em.Close(t.Context()))
}

func TestDuplicateWebhooks(t *testing.T) {
	t.Parallel()
	for _, gap := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(gap.String(), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, http.StatusOK)
			em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{DuplicateWebhooks: 1, DuplicateGap: gap}})
			resp, err := convertJob(t.Context(), t, url, "job-dup")
			require.NoError(t, err)
			require.NoError(t, em.Close(t.Context()))

			got := rc.deliveries()
			require.Len(t, got, 2, "sent twice")
			v := &elevenlabs.Verifier{Secrets: []string{testSecret}}
			for _, d := range got {
				sig := d.header.Get("ElevenLabs-Signature")
				require.NoError(t, v.Verify(sig, d.body))
				_, err := sdkConstructEvent(d.body, sig, testSecret, time.Now())
				require.NoError(t, err)
				wh, err := elevenlabs.ParseWebhook(d.body)
				require.NoError(t, err)
				require.Equal(t, resp.RequestID, wh.Data.RequestID)
				require.Equal(t, "job-dup", jobOf(t, d))
			}
			c := em.Ledger()[0]
			require.Equal(t, 2, c.Deliveries)
			require.Equal(t, "delivered", c.Delivery)
			require.Equal(t, []string{"duplicate_webhook"}, c.Faults)
			st := em.Stats()
			require.Equal(t, 2, st.WebhooksSent)
			require.Equal(t, 2, st.WebhooksDelivered)
			require.Equal(t, 1, st.WebhooksDuplicated)
			require.Equal(t, 2, JobCountsOf(t, em, "job-dup").Webhooks)
			require.Equal(t, 1, JobCountsOf(t, em, "job-dup").Accepted)
		})
	}
}

func TestDroppedWebhookTranscriptStillRetrievable(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{DropWebhooks: 1}})
	resp, err := convertJob(t.Context(), t, url, "job-drop")
	require.NoError(t, err)
	require.NoError(t, em.Close(t.Context()), "Close waits for every job to finish")
	require.Empty(t, rc.deliveries(), "never sent")

	c := em.Ledger()[0]
	require.Equal(t, "dropped", c.Delivery)
	require.Zero(t, c.Deliveries)
	raw, err := client(t, url).GetTranscript(t.Context(), resp.TranscriptionID)
	require.NoError(t, err)
	tr, err := elevenlabs.ParseTranscript(raw)
	require.NoError(t, err)
	require.Equal(t, resp.TranscriptionID, tr.TranscriptionID)
	st := em.Stats()
	require.Equal(t, 1, st.WebhooksDropped)
	require.Zero(t, st.WebhooksSent)
	require.Zero(t, st.WebhooksPending)
}

func TestMetadataAsString(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{MetadataAsString: 1}})
	_, err := client(t, url).Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", SourceURL: "https://example.com/a.mp3", Webhook: true,
		WebhookMetadata: map[string]any{"job_id": "job-str", "n": 1},
	})
	require.NoError(t, err)
	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 1)
	var env struct {
		Data struct {
			WebhookMetadata json.RawMessage `json:"webhook_metadata"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got[0].body, &env))
	var inner string
	require.NoError(t, json.Unmarshal(env.Data.WebhookMetadata, &inner), "a JSON string: %s", env.Data.WebhookMetadata)
	require.JSONEq(t, `{"job_id":"job-str","n":1}`, inner)
	require.NoError(t, (&elevenlabs.Verifier{Secrets: []string{testSecret}}).Verify(got[0].header.Get("ElevenLabs-Signature"), got[0].body))
	require.Equal(t, "job-str", jobOf(t, got[0]), "ParseWebhook decodes it either way")
}

func TestLateWebhookIsOvertakenAndPutFaultsTakesEffect(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{
		LateWebhooks: 1, LateMin: 300 * time.Millisecond, LateMax: 300 * time.Millisecond,
	}})
	_, err := convertJob(t.Context(), t, url, "job-late")
	require.NoError(t, err)

	// Faults off, on the running server, over HTTP.
	resp, body := do(t, http.MethodPut, url+"/emulator/faults", "", "application/json", strings.NewReader(`{}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	_, err = convertJob(t.Context(), t, url, "job-prompt")
	require.NoError(t, err)

	require.NoError(t, em.Close(t.Context()))
	got := rc.deliveries()
	require.Len(t, got, 2)
	require.Equal(t, []string{"job-prompt", "job-late"}, []string{jobOf(t, got[0]), jobOf(t, got[1])},
		"the later job's webhook arrives first")
	late := em.LedgerFor("job-late")[0]
	require.Equal(t, []string{"late_webhook"}, late.Faults)
	require.GreaterOrEqual(t, got[1].at.Sub(late.At), 300*time.Millisecond)
	require.Empty(t, em.LedgerFor("job-prompt")[0].Faults)
}

func TestReorderedWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Seed: 3, Faults: emulator.Faults{ReorderWebhooks: 1, ReorderJitter: 400 * time.Millisecond}})
	var sent []string
	for i := range 8 {
		id := "job-" + strconv.Itoa(i)
		_, err := convertJob(t.Context(), t, url, id)
		require.NoError(t, err)
		sent = append(sent, id)
	}
	require.NoError(t, em.Close(t.Context()))
	var arrived []string
	for _, d := range rc.deliveries() {
		arrived = append(arrived, jobOf(t, d))
	}
	require.ElementsMatch(t, sent, arrived, "every webhook once")
	require.NotEqual(t, sent, arrived, "jitter reorders them")
	for _, c := range em.Ledger() {
		require.Equal(t, []string{"reorder_webhook"}, c.Faults)
	}
}

func TestStall(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{Stall: 1, StallFor: 200 * time.Millisecond}})
	began := time.Now()
	_, err := convertJob(t.Context(), t, url, "job-slow")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "the answer was held back")

	// A client that gives up during the stall never gets the answer; the
	// job goes on.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = convertJob(ctx, t, url, "job-gave-up")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	waitFor(t, "the stalled answer to be lost", func() bool {
		c := em.LedgerFor("job-gave-up")
		return len(c) == 1 && c[0].AnswerLost
	})
	require.NoError(t, em.Close(t.Context()))
	require.Len(t, rc.deliveries(), 2, "both jobs were accepted")
	require.False(t, em.LedgerFor("job-slow")[0].AnswerLost)
	require.Equal(t, 1, em.Stats().AnswersLost)
}

func TestTranscriptFaults(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{Faults: emulator.Faults{LostTranscripts: 1}})
	c := client(t, url)
	lost, err := convertJob(t.Context(), t, url, "job-lost")
	require.NoError(t, err)
	waitFor(t, "the webhook", func() bool { return len(rc.deliveries()) == 1 })

	_, err = c.GetTranscript(t.Context(), lost.TranscriptionID)
	require.ErrorIs(t, err, elevenlabs.ErrNotFound, "lost at ElevenLabs")
	require.NoError(t, em.SetFaults(emulator.Faults{}))
	_, err = c.GetTranscript(t.Context(), lost.TranscriptionID)
	require.ErrorIs(t, err, elevenlabs.ErrNotFound, "lost for good")
	require.ErrorIs(t, c.DeleteTranscript(t.Context(), lost.TranscriptionID), elevenlabs.ErrNotFound)

	kept, err := convertJob(t.Context(), t, url, "job-kept")
	require.NoError(t, err)
	waitFor(t, "the webhook", func() bool { return len(rc.deliveries()) == 2 })
	require.NoError(t, em.SetFaults(emulator.Faults{TranscriptErrors: 1}))
	for range 3 {
		_, err = c.GetTranscript(t.Context(), kept.TranscriptionID)
		var apiErr *elevenlabs.APIError
		require.ErrorAs(t, err, &apiErr)
		require.GreaterOrEqual(t, apiErr.Status, 500)
		require.True(t, apiErr.Temporary())
	}
	require.NoError(t, em.SetFaults(emulator.Faults{}))
	_, err = c.GetTranscript(t.Context(), kept.TranscriptionID)
	require.NoError(t, err, "a 5xx is not a loss")

	st := em.Stats()
	require.Equal(t, 2, st.TranscriptsLost)
	require.Equal(t, 3, st.TranscriptErrors)
	require.Equal(t, 6, st.TranscriptGets)
}

func TestConcurrencySlotsHeldUntilWebhook(t *testing.T) {
	t.Parallel()
	var em atomic.Pointer[emulator.Server]
	var mu sync.Mutex
	slotsAtArrival := map[string]int{}
	rc := newHookReceiver(t, http.StatusOK, func(d delivery) {
		wh, _ := elevenlabs.ParseWebhook(d.body)
		n := em.Load().Stats().Slots
		mu.Lock()
		slotsAtArrival[elevenlabs.MetadataString(wh.Data.WebhookMetadata, "job_id")] = n
		mu.Unlock()
	})
	srv, url := webhookServer(t, rc, emulator.Config{MaxConcurrent: 4, WebhookDelay: time.Second})
	em.Store(srv)
	c := client(t, url)

	// 20 minutes: ⌈1200/480⌉ = 3 slots.
	long := rawWAV(1200, 1)
	first, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(long), FileSize: int64(len(long)), Webhook: true,
		WebhookMetadata: map[string]any{"job_id": "job-long"},
	})
	require.NoError(t, err)
	require.Equal(t, 3, first.ConcurrentRequests)
	require.Equal(t, 4, first.MaxConcurrentRequests)
	second, err := convertJob(t.Context(), t, url, "job-short")
	require.NoError(t, err)
	require.Equal(t, 4, second.ConcurrentRequests)

	_, err = convertJob(t.Context(), t, url, "job-over")
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.True(t, apiErr.TooManyConcurrent())
	require.Equal(t, 4, apiErr.ConcurrentRequests)
	require.Equal(t, 4, apiErr.MaxConcurrentRequests)
	require.Equal(t, 4, srv.Stats().Slots, "slots stay busy while the jobs are processing")
	require.Empty(t, rc.deliveries(), "no webhook yet")

	waitFor(t, "both webhooks", func() bool { return len(rc.deliveries()) == 2 })
	mu.Lock()
	require.LessOrEqual(t, slotsAtArrival["job-long"], 1, "its 3 slots were free when its webhook came")
	require.LessOrEqual(t, slotsAtArrival["job-short"], 3)
	mu.Unlock()
	st := srv.Stats()
	require.Zero(t, st.Slots)
	require.Equal(t, 4, st.PeakSlots)
	require.Equal(t, 1, st.TooManyConcurrent)
	require.Equal(t, 3, srv.LedgerFor("job-long")[0].Slots)

	_, err = convertJob(t.Context(), t, url, "job-over")
	require.NoError(t, err, "room again")
	require.NoError(t, srv.Close(t.Context()))
}

func TestSlotsCountLikeElevenLabs(t *testing.T) {
	t.Parallel()
	em, url := start(t, emulator.Config{MaxConcurrent: 3})
	tests := []struct {
		name   string
		audio  []byte
		fields []field
		want   int
	}{
		{"Short", rawWAV(60, 1), nil, 1},
		{"JustOverEightMinutes", rawWAV(481, 1), nil, 2},
		{"StereoIsOneSlotWithoutMultichannel", rawWAV(10, 2), nil, 1},
		{"MultichannelCountsEachChannel", rawWAV(10, 2), []field{{"use_multi_channel", "true"}}, 2},
		{"NeverMoreThanTheLimit", rawWAV(2*3600, 1), nil, 3},
	}
	for i, tt := range tests {
		fields := append([]field{{"model_id", "scribe_v2"}, {"webhook_metadata", `{"job_id":"` + tt.name + `"}`}}, tt.fields...)
		resp, body := postForm(t, url, testKey, "", fields, filePart{"file", tt.audio})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tt.name, body)
		c := em.Ledger()[i]
		require.Equal(t, tt.name, c.JobID)
		require.Equal(t, tt.want, c.Slots, tt.name)
	}
	require.Zero(t, em.Stats().Slots, "synchronous jobs are done")
	require.Equal(t, 3, em.Stats().PeakSlots)
}

func TestFaultsOverHTTP(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{})
	put := func(body string) (*http.Response, []byte) {
		return do(t, http.MethodPut, url+"/emulator/faults", "", "application/json", strings.NewReader(body))
	}
	convert := func() *http.Response {
		resp, _ := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"source_url", "https://example.com/a.mp3"}})
		return resp
	}
	require.Equal(t, http.StatusOK, convert().StatusCode)

	resp, body := put(`{"status":{"503":1},"retry_after":"2s"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var now emulator.Faults
	require.NoError(t, json.Unmarshal(body, &now))
	require.Equal(t, map[int]float64{503: 1}, now.Status)
	require.Equal(t, emulator.DefaultStallFor, now.StallFor, "the answer shows the defaults in force")
	r := convert()
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	require.Equal(t, "2", r.Header.Get("Retry-After"))

	resp, body = do(t, http.MethodGet, url+"/emulator/faults", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `"status":{"503":1}`)

	resp, body = put(`{"drop_webhooks":2}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, string(body), "DropWebhooks")
	resp, body = put(`{"drop_webhook":1}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, string(body), "drop_webhook")
	require.Equal(t, http.StatusServiceUnavailable, convert().StatusCode, "a refused PUT changes nothing")

	resp, _ = put(`{}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, http.StatusOK, convert().StatusCode)
}

func TestLedgerByJobAndStatsOverHTTP(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusOK)
	em, url := webhookServer(t, rc, emulator.Config{})
	require.NoError(t, em.SetFaults(emulator.Faults{Status: map[int]float64{500: 1}}))
	_, err := convertJob(t.Context(), t, url, "job-a")
	require.Error(t, err)
	require.NoError(t, em.SetFaults(emulator.Faults{ResetAfterAccept: 1}))
	_, err = convertJob(t.Context(), t, url, "job-a")
	require.Error(t, err)
	require.NoError(t, em.SetFaults(emulator.Faults{}))
	_, err = convertJob(t.Context(), t, url, "job-a")
	require.NoError(t, err)
	_, err = convertJob(t.Context(), t, url, "job-b")
	require.NoError(t, err)
	require.NoError(t, em.Close(t.Context()))

	resp, body := do(t, http.MethodGet, url+"/emulator/ledger?job_id=job-a", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var calls []emulator.Call
	require.NoError(t, json.Unmarshal(body, &calls))
	require.Len(t, calls, 3)
	require.Equal(t, []int{500, 200, 200}, []int{calls[0].Status, calls[1].Status, calls[2].Status})
	require.Equal(t, []bool{false, true, true}, []bool{calls[0].Accepted, calls[1].Accepted, calls[2].Accepted})
	resp, body = do(t, http.MethodGet, url+"/emulator/ledger?job_id=nobody", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `[]`, string(body))

	jobs := func(query string) map[string]emulator.JobCounts {
		resp, body := do(t, http.MethodGet, url+"/emulator/ledger/jobs"+query, "", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var out map[string]emulator.JobCounts
		require.NoError(t, json.Unmarshal(body, &out))
		return out
	}
	all := jobs("")
	require.Len(t, all, 2)
	a := all["job-a"]
	require.Equal(t, emulator.JobCounts{
		Calls: 3, Accepted: 2, AnswerLost: 1, Refused: 1, Webhooks: 2,
		TranscriptionIDs: []string{calls[1].TranscriptionID, calls[2].TranscriptionID},
	}, a)
	require.Equal(t, 1, all["job-b"].Accepted)
	require.Equal(t, []string{"job-a"}, slices.Collect(maps.Keys(jobs("?min_accepted=2"))), "billed more than once")
	require.Equal(t, []string{"job-b"}, slices.Collect(maps.Keys(jobs("?job_id=job-b"))))
	resp, _ = do(t, http.MethodGet, url+"/emulator/ledger/jobs?min_accepted=x", "", "", nil)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	resp, body = do(t, http.MethodGet, url+"/emulator/stats", "", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st map[string]any
	require.NoError(t, json.Unmarshal(body, &st))
	for k, want := range map[string]float64{
		"calls": 4, "accepted": 3, "answers_lost": 1, "webhooks_sent": 3, "webhooks_delivered": 3,
		"webhooks_pending": 0, "slots": 0,
	} {
		require.Equal(t, want, st[k], k)
	}
	require.Equal(t, map[string]any{"500": 1.0}, st["refused"])
	require.Equal(t, map[string]any{"status_500": 1.0, "reset_after_accept": 1.0}, st["injected"])
}
