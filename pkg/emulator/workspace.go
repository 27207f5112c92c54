package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookState is what an operator (or ElevenLabs itself) can change about
// the workspace's webhook. It only affects what GET /v1/workspace/webhooks
// reports: deliveries go on regardless, so a test can flip it without
// touching the rest of its setup.
type WebhookState struct {
	// Disabled: switched off by a person (is_disabled).
	Disabled bool `json:"is_disabled"`
	// AutoDisabled: switched off by ElevenLabs after repeated failures
	// (is_auto_disabled); the real API needs a person to re-enable it.
	AutoDisabled bool `json:"is_auto_disabled"`
}

// SetWebhookState changes the state GET /v1/workspace/webhooks reports for
// the configured webhook (also PUT /emulator/webhook).
func (s *Server) SetWebhookState(st WebhookState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = st
}

// The list answer of GET /v1/workspace/webhooks
// (WorkspaceWebhookListResponseModel and WorkspaceWebhookResponseModel in
// the Python SDK). usage and events are only filled with include_usages.
type workspaceWebhookList struct {
	Webhooks []workspaceWebhook `json:"webhooks"`
}

type workspaceWebhook struct {
	Name                       string         `json:"name"`
	WebhookID                  string         `json:"webhook_id"`
	WebhookURL                 string         `json:"webhook_url"`
	IsDisabled                 bool           `json:"is_disabled"`
	IsAutoDisabled             bool           `json:"is_auto_disabled"`
	CreatedAtUnix              int64          `json:"created_at_unix"`
	AuthType                   string         `json:"auth_type"`
	Usage                      []webhookUsage `json:"usage,omitempty"`
	Events                     []string       `json:"events,omitempty"`
	MostRecentFailureErrorCode *int           `json:"most_recent_failure_error_code"`
	MostRecentFailureTimestamp *int64         `json:"most_recent_failure_timestamp"`
}

type webhookUsage struct {
	UsageType string `json:"usage_type"`
}

// handleListWebhooks lists the one webhook the emulator delivers to (none
// without Config.WebhookURL). The most recent failure is the newest failed
// first delivery in the ledger: any non-2xx answer or transport error, as
// the real API counts failures.
func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("request-id", reqID)
	if e := s.authenticate(r); e != nil {
		writeError(w, reqID, e)
		return
	}
	usages := false
	if v := r.URL.Query().Get("include_usages"); v != "" {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			writeError(w, reqID, invalid("include_usages", "Input should be a valid boolean, unable to interpret input"))
			return
		}
		usages = b
	}
	list := workspaceWebhookList{Webhooks: []workspaceWebhook{}}
	if s.cfg.WebhookURL == "" {
		writeJSON(w, http.StatusOK, list)
		return
	}
	s.mu.Lock()
	wh := workspaceWebhook{
		Name:           s.cfg.WebhookName,
		WebhookID:      s.cfg.WebhookID,
		WebhookURL:     s.cfg.WebhookURL,
		IsDisabled:     s.webhook.Disabled,
		IsAutoDisabled: s.webhook.AutoDisabled,
		CreatedAtUnix:  s.started.Unix(),
		AuthType:       "hmac",
	}
	var lastFail time.Time
	for _, c := range s.ledger {
		if c.Delivery != "failed" || c.DeliveredAt.Before(lastFail) {
			continue
		}
		lastFail = c.DeliveredAt
		ts := c.DeliveredAt.Unix()
		wh.MostRecentFailureTimestamp = &ts
		wh.MostRecentFailureErrorCode = nil
		if c.DeliveryStatus != 0 {
			code := c.DeliveryStatus
			wh.MostRecentFailureErrorCode = &code
		}
	}
	s.mu.Unlock()
	if usages {
		wh.Usage = []webhookUsage{{UsageType: "Speech to Text"}}
		wh.Events = []string{"speech_to_text"}
	}
	list.Webhooks = append(list.Webhooks, wh)
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleGetWebhookState(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	st := s.webhook
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handlePutWebhookState(w http.ResponseWriter, r *http.Request) {
	var st WebhookState
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		writeError(w, newRequestID(), invalid("body", "webhook state: "+err.Error()))
		return
	}
	s.SetWebhookState(st)
	writeJSON(w, http.StatusOK, st)
}
