package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

const fixCreateWebhook = "create one: ElevenLabs dashboard → Developers → Webhooks → HMAC, URL https://<your host>/webhooks/elevenlabs;\n" +
	"enable it for Speech to Text (Settings → Webhooks) and put its secret in SCRIBEQ_WEBHOOK_SECRETS"

// recentFailure is how far back a failed delivery is worth a warning:
// ElevenLabs auto-disables a webhook that has failed 10 times in a row
// with no success for 7 days.
const recentFailure = 7 * 24 * time.Hour

func checkElevenLabs(ctx context.Context, cfg Config) []Result {
	rs := &results{group: GroupElevenLabs}
	if cfg.APIKey == "" {
		rs.skip("api key", "no API key (ELEVENLABS_API_KEY): skipped; 'scribeq dev' uses the emulator then")
		return rs.list
	}
	api, err := elevenlabs.New(elevenlabs.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient,
		UserAgent: "scribeq-doctor"})
	if err != nil {
		rs.fail("api key", err.Error(), "fix ELEVENLABS_BASE_URL (or --base-url)")
		return rs.list
	}
	// Usages say which webhooks receive speech-to-text results, but only
	// admins may see them: without, every webhook counts.
	hooks, err := api.ListWebhooks(ctx, true)
	usagesKnown := err == nil
	var apiErr *elevenlabs.APIError
	if errors.As(err, &apiErr) && !keyRejected(apiErr) && !apiErr.Temporary() {
		hooks, err = api.ListWebhooks(ctx, false)
	}
	if err != nil {
		switch {
		case errors.As(err, &apiErr) && keyRejected(apiErr):
			rs.fail("api key", fmt.Sprintf("rejected by %s: %s", cfg.BaseURL, apiErr.Error()),
				"set ELEVENLABS_API_KEY to a valid key (ElevenLabs → Developers → API keys); make sure it is not revoked or expired")
		case errors.As(err, &apiErr) && (apiErr.Status == http.StatusForbidden || apiErr.Status == http.StatusUnauthorized):
			rs.ok("api key", "accepted")
			rs.warn("webhook", "the key may not list workspace webhooks: "+apiErr.Error(),
				"give the key the workspace permission (or check the webhook by hand in the dashboard)")
		default:
			rs.fail("api key", fmt.Sprintf("cannot reach %s: %v", cfg.BaseURL, err),
				"check network access to the API (proxy, firewall, DNS) and ELEVENLABS_BASE_URL")
		}
		return rs.list
	}
	rs.ok("api key", "valid ("+cfg.BaseURL+")")
	checkWorkspaceWebhooks(rs, hooks, usagesKnown, cfg)
	return rs.list
}

// keyRejected: the key itself is wrong, not merely short of a permission.
func keyRejected(e *elevenlabs.APIError) bool {
	if e.Status != http.StatusUnauthorized {
		return false
	}
	switch e.Code {
	case "", "invalid_api_key", "needs_authorization":
		return true
	}
	return false
}

// checkWorkspaceWebhooks finds the webhooks scribeq's results go to and
// checks each: HMAC, enabled, not auto-disabled, pointing at WebhookURL.
func checkWorkspaceWebhooks(rs *results, hooks []elevenlabs.WorkspaceWebhook, usagesKnown bool, cfg Config) {
	var stt []elevenlabs.WorkspaceWebhook
	for _, h := range hooks {
		if !usagesKnown || !h.UsagesKnown() || h.SpeechToText() {
			stt = append(stt, h)
		}
	}
	var selected []elevenlabs.WorkspaceWebhook
	if cfg.WebhookID != "" {
		for _, h := range hooks {
			if h.WebhookID == cfg.WebhookID {
				selected = append(selected, h)
			}
		}
		if len(selected) == 0 {
			rs.fail("webhook", fmt.Sprintf("webhook %s is not in the workspace (it has: %s)", cfg.WebhookID, describe(hooks)),
				"set SCRIBEQ_WEBHOOK_ID to one of the workspace's webhook ids, or leave it empty to use every speech-to-text webhook")
			return
		}
	} else {
		selected = stt
	}
	if len(selected) == 0 {
		detail := "no speech-to-text webhook in the workspace"
		if len(hooks) > 0 {
			detail += " (others: " + describe(hooks) + ")"
		}
		rs.fail("webhook", detail, fixCreateWebhook)
		return
	}
	if cfg.WebhookID == "" && len(selected) > 1 {
		rs.warn("webhooks", fmt.Sprintf("%d speech-to-text webhooks: every result is delivered to each (%s)", len(selected), describe(selected)),
			"set SCRIBEQ_WEBHOOK_ID so the submitter names one, or remove the extra webhooks")
	}
	matched := cfg.WebhookURL == ""
	for _, h := range selected {
		matched = matched || sameURL(h.WebhookURL, cfg.WebhookURL)
		checkWebhook(rs, h, usagesKnown, len(selected) > 1, cfg)
	}
	if !matched {
		rs.fail("webhook url", fmt.Sprintf("no webhook points at %s (they point at: %s)", cfg.WebhookURL, urls(selected)),
			"change the webhook's URL in the dashboard to the ingress's public URL, or fix --webhook-url")
	}
}

func checkWebhook(rs *results, h elevenlabs.WorkspaceWebhook, usagesKnown, several bool, cfg Config) {
	name := "webhook"
	if several {
		name = "webhook " + h.WebhookID
	}
	var v verdict
	if h.IsAutoDisabled {
		why := ""
		if h.MostRecentFailureErrorCode != nil {
			why = fmt.Sprintf(" (last failure: HTTP %d)", *h.MostRecentFailureErrorCode)
		}
		v.problem(Fail, "auto-disabled by ElevenLabs after repeated failed deliveries"+why,
			"make the ingress answer 200 at "+h.WebhookURL+" (check the webhook URL below and the ingress logs),\n"+
				"then re-enable the webhook in the dashboard (Developers → Webhooks): ElevenLabs never does it by itself;\n"+
				"transcripts finished meanwhile are recovered by 'scribeq reconciler'")
	}
	if h.IsDisabled {
		v.problem(Fail, "disabled", "enable it in the dashboard (Developers → Webhooks); no results arrive while it is off")
	}
	if h.AuthType != "hmac" {
		v.problem(Fail, "auth type "+h.AuthType+", not hmac",
			"scribeq's ingress verifies HMAC signatures: create an HMAC webhook and put its secret in SCRIBEQ_WEBHOOK_SECRETS")
	}
	if usagesKnown && h.UsagesKnown() && !h.SpeechToText() {
		v.problem(Fail, "not used for speech-to-text", "select it for Speech to Text in the dashboard's webhook settings")
	}
	if h.MostRecentFailureTimestamp != nil && !h.IsAutoDisabled {
		at := time.Unix(*h.MostRecentFailureTimestamp, 0)
		if age := cfg.Now().Sub(at); age < recentFailure {
			code := "an error"
			if h.MostRecentFailureErrorCode != nil {
				code = fmt.Sprintf("HTTP %d", *h.MostRecentFailureErrorCode)
			}
			v.problem(Warn, fmt.Sprintf("a delivery failed %s ago with %s", age.Round(time.Minute), code),
				"that webhook's result was not stored; 'scribeq reconciler' recovers it — check the ingress logs for the cause")
		}
	}
	detail := fmt.Sprintf("%q (%s) → %s", h.Name, h.WebhookID, h.WebhookURL)
	v.emit(rs, name, detail)
}

func describe(hooks []elevenlabs.WorkspaceWebhook) string {
	if len(hooks) == 0 {
		return "none"
	}
	var parts []string
	for _, h := range hooks {
		parts = append(parts, fmt.Sprintf("%s %s", h.WebhookID, h.WebhookURL))
	}
	return strings.Join(parts, ", ")
}

func urls(hooks []elevenlabs.WorkspaceWebhook) string {
	var parts []string
	for _, h := range hooks {
		parts = append(parts, h.WebhookURL)
	}
	return strings.Join(parts, ", ")
}

// sameURL compares webhook URLs as ElevenLabs would call them: scheme and
// host case-insensitively, a trailing slash ignored.
func sameURL(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimSpace(s)
		if i := strings.Index(s, "://"); i >= 0 {
			rest := s[i+3:]
			host, path, _ := strings.Cut(rest, "/")
			s = strings.ToLower(s[:i]) + "://" + strings.ToLower(host) + "/" + path
		}
		return strings.TrimRight(s, "/")
	}
	return norm(a) == norm(b)
}
