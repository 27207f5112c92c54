package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
)

// TestListWebhooks: the configured webhook is listed with the SDK's field
// names, usages only on request, and the last failed delivery is reported
// as the real API reports it.
func TestListWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, http.StatusServiceUnavailable)
	em, url := start(t, emulator.Config{APIKeys: []string{testKey}, WebhookURL: rc.url, WebhookSecret: testSecret})
	c := client(t, url)

	list, err := c.ListWebhooks(t.Context(), false)
	require.NoError(t, err)
	require.Len(t, list, 1)
	wh := list[0]
	require.Equal(t, "wh_emulator", wh.WebhookID)
	require.Equal(t, rc.url, wh.WebhookURL)
	require.Equal(t, "hmac", wh.AuthType)
	require.False(t, wh.IsDisabled)
	require.False(t, wh.IsAutoDisabled)
	require.False(t, wh.UsagesKnown(), "usages come only with include_usages")
	require.Nil(t, wh.MostRecentFailureErrorCode)

	// A delivery the receiver refuses becomes the most recent failure.
	resp, body := postForm(t, url, testKey, "", []field{{"model_id", "scribe_v2"}, {"webhook", "true"}},
		filePart{"file", wav(t, 1, "", 3)})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	waitFor(t, "the failed delivery", func() bool { return em.Ledger()[0].Delivery == "failed" })

	em.SetWebhookState(emulator.WebhookState{AutoDisabled: true})
	list, err = c.ListWebhooks(t.Context(), true)
	require.NoError(t, err)
	wh = list[0]
	require.True(t, wh.IsAutoDisabled)
	require.False(t, wh.IsDisabled)
	require.True(t, wh.UsagesKnown())
	require.True(t, wh.SpeechToText())
	require.NotNil(t, wh.MostRecentFailureErrorCode)
	require.Equal(t, http.StatusServiceUnavailable, *wh.MostRecentFailureErrorCode)
	require.NotNil(t, wh.MostRecentFailureTimestamp)
	require.Equal(t, em.Ledger()[0].DeliveredAt.Unix(), *wh.MostRecentFailureTimestamp)
}

// TestListWebhooksWire checks the raw answer's field names against the
// SDK's model, and the auth rules shared with the other endpoints.
func TestListWebhooksWire(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{APIKeys: []string{testKey}, WebhookURL: "https://hooks.example/x", WebhookSecret: testSecret})
	get := func(key, query string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/v1/workspace/webhooks"+query, nil)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("xi-api-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		return resp.StatusCode, m
	}

	status, m := get(testKey, "?include_usages=true")
	require.Equal(t, http.StatusOK, status)
	hooks := m["webhooks"].([]any)
	require.Len(t, hooks, 1)
	wh := hooks[0].(map[string]any)
	for _, k := range []string{"name", "webhook_id", "webhook_url", "is_disabled", "is_auto_disabled",
		"created_at_unix", "auth_type", "usage", "events", "most_recent_failure_error_code", "most_recent_failure_timestamp"} {
		require.Contains(t, wh, k)
	}
	require.Equal(t, []any{map[string]any{"usage_type": "Speech to Text"}}, wh["usage"])
	require.Equal(t, []any{"speech_to_text"}, wh["events"])

	status, m = get("", "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "needs_authorization", m["detail"].(map[string]any)["code"])
	status, m = get("sk_wrong", "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "invalid_api_key", m["detail"].(map[string]any)["code"])
	status, _ = get(testKey, "?include_usages=maybe")
	require.Equal(t, http.StatusUnprocessableEntity, status)

	// The client turns the 401 into an *APIError naming the code.
	bad, err := elevenlabs.New(elevenlabs.Config{BaseURL: url, APIKey: "sk_wrong"})
	require.NoError(t, err)
	_, err = bad.ListWebhooks(t.Context(), false)
	var apiErr *elevenlabs.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
	require.Equal(t, "invalid_api_key", apiErr.Code)
	require.NotContains(t, err.Error(), "sk_wrong")
}

// TestWebhookStateRoute: PUT /emulator/webhook flips the state a running
// emulator reports, for trying `scribeq doctor` by hand.
func TestWebhookStateRoute(t *testing.T) {
	t.Parallel()
	_, url := start(t, emulator.Config{WebhookURL: "https://hooks.example/x", WebhookSecret: testSecret})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/emulator/webhook",
		strings.NewReader(`{"is_disabled":true}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	list, err := client(t, url).ListWebhooks(t.Context(), false)
	require.NoError(t, err)
	require.True(t, list[0].IsDisabled)

	req, err = http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/emulator/webhook", strings.NewReader(`{"disabled":1}`))
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	// Without a webhook the list is empty, not null.
	_, bare := start(t, emulator.Config{})
	list, err = client(t, bare).ListWebhooks(t.Context(), true)
	require.NoError(t, err)
	require.Empty(t, list)
}
