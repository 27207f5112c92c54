package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// The webhook body: the documented envelope with the STT payload
// (shared/ELEVENLABS.md §1d). webhook_metadata is echoed as the object that
// was sent, or null.
type webhookEnvelope struct {
	Type           string      `json:"type"`
	EventTimestamp int64       `json:"event_timestamp"`
	Data           webhookData `json:"data"`
}

type webhookData struct {
	RequestID       string          `json:"request_id"`
	WebhookMetadata json.RawMessage `json:"webhook_metadata"`
	Transcription   chunkModel      `json:"transcription"`
}

// process finishes a webhook=true job: wait the processing time, make the
// transcript retrievable, deliver the webhook once.
func (s *Server) process(idx int, res *result, delay time.Duration) {
	defer s.wg.Done()
	defer s.release()
	if !sleep(s.base, s.base, delay) {
		s.updateCall(idx, func(c *Call) { c.Delivery = "canceled" })
		return
	}
	s.markReady(res)
	s.deliver(idx, res)
}

func (s *Server) markReady(res *result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res.ready = true
}

// deliver POSTs the signed webhook exactly once: speech-to-text webhooks
// are never retried, whatever the receiver answers.
func (s *Server) deliver(idx int, res *result) {
	now := s.cfg.Now()
	body, err := json.Marshal(webhookEnvelope{
		Type:           elevenlabs.WebhookType,
		EventTimestamp: now.Unix(),
		Data: webhookData{
			RequestID:       res.requestID,
			WebhookMetadata: res.metadata,
			Transcription:   res.chunk(),
		},
	})
	if err != nil {
		s.deliveryFailed(idx, res, 0, "encode webhook: "+err.Error())
		return
	}
	req, err := http.NewRequestWithContext(s.base, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		s.deliveryFailed(idx, res, 0, "build webhook request: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scribeq-emulator")
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(s.cfg.WebhookSecret, now, body))
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		if s.base.Err() != nil {
			s.updateCall(idx, func(c *Call) { c.Delivery = "canceled" })
			return
		}
		s.deliveryFailed(idx, res, 0, err.Error())
		return
	}
	// Drain a little so the connection can be reused; the answer's body
	// does not matter, only its status.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.deliveryFailed(idx, res, resp.StatusCode, "receiver answered "+strconv.Itoa(resp.StatusCode))
		return
	}
	s.updateCall(idx, func(c *Call) { c.Delivery, c.DeliveryStatus = "delivered", resp.StatusCode })
	s.log.Info("emulator: webhook delivered", "request_id", res.requestID,
		"transcription_id", res.transcriptionID, "job_id", elevenlabs.MetadataString(res.metadata, "job_id"),
		"status", resp.StatusCode, "bytes", len(body))
}

func (s *Server) deliveryFailed(idx int, res *result, status int, msg string) {
	s.updateCall(idx, func(c *Call) { c.Delivery, c.DeliveryStatus, c.DeliveryError = "failed", status, msg })
	s.log.Warn("emulator: webhook not delivered; it will not be retried", "request_id", res.requestID,
		"transcription_id", res.transcriptionID, "job_id", elevenlabs.MetadataString(res.metadata, "job_id"),
		"status", status, "error", msg)
}
