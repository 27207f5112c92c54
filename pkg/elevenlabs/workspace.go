package elevenlabs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// WorkspaceWebhook is one webhook of the workspace, as GET
// /v1/workspace/webhooks lists it (WorkspaceWebhookResponseModel).
type WorkspaceWebhook struct {
	Name       string `json:"name"`
	WebhookID  string `json:"webhook_id"`
	WebhookURL string `json:"webhook_url"`
	// IsDisabled: switched off by a person.
	IsDisabled bool `json:"is_disabled"`
	// IsAutoDisabled: switched off by ElevenLabs after 10 or more
	// consecutive failures with no success for 7 days; only a person can
	// switch it back on.
	IsAutoDisabled bool  `json:"is_auto_disabled"`
	CreatedAtUnix  int64 `json:"created_at_unix"`
	// AuthType is hmac, oauth2 or mtls; scribeq's ingress verifies hmac.
	AuthType string `json:"auth_type"`
	// Usage and Events are only filled when usages were requested (and the
	// key may see them): the products and events that trigger the webhook.
	Usage  []WebhookUsage `json:"usage,omitempty"`
	Events []string       `json:"events,omitempty"`
	// MostRecentFailureErrorCode is the HTTP status of the newest failed
	// delivery; MostRecentFailureTimestamp its Unix time.
	MostRecentFailureErrorCode *int   `json:"most_recent_failure_error_code,omitempty"`
	MostRecentFailureTimestamp *int64 `json:"most_recent_failure_timestamp,omitempty"`
}

// WebhookUsage names a product that triggers a webhook, e.g. "Speech to Text".
type WebhookUsage struct {
	UsageType string `json:"usage_type"`
}

// Webhook event and usage names for speech-to-text.
const (
	EventSpeechToText = "speech_to_text"
	UsageSpeechToText = "Speech to Text"
)

// UsagesKnown reports whether Usage/Events were returned, so that their
// absence says something.
func (w *WorkspaceWebhook) UsagesKnown() bool { return w.Usage != nil || w.Events != nil }

// SpeechToText reports whether the webhook receives speech-to-text results
// (meaningful only when UsagesKnown).
func (w *WorkspaceWebhook) SpeechToText() bool {
	if slices.Contains(w.Events, EventSpeechToText) {
		return true
	}
	return slices.ContainsFunc(w.Usage, func(u WebhookUsage) bool { return u.UsageType == UsageSpeechToText })
}

// ListWebhooks returns the workspace's webhooks. includeUsages asks for
// Usage and Events too, which only admins may see. It is also a cheap way
// to prove the API key works: an invalid key is an *APIError with status 401.
func (c *Client) ListWebhooks(ctx context.Context, includeUsages bool) ([]WorkspaceWebhook, error) {
	u := c.base + "/v1/workspace/webhooks"
	if includeUsages {
		u += "?include_usages=true"
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: list webhooks: %w", err)
	}
	_, data, err := c.send(hreq)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: list webhooks: %w", err)
	}
	var list struct {
		Webhooks []WorkspaceWebhook `json:"webhooks"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("elevenlabs: list webhooks: decode answer: %w", err)
	}
	return list.Webhooks, nil
}
