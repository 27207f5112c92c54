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
// transcript retrievable and free the slots, then deliver the webhook once
// (or as the plan's faults say: never, late, twice).
func (s *Server) process(idx int, res *result, delay time.Duration, p *plan) {
	defer s.wg.Done()
	ok := sleep(s.base, s.base, delay)
	s.finish(res, ok)
	if !ok {
		s.settle(idx, "canceled", 0, "")
		return
	}
	if p.drop {
		s.settle(idx, "dropped", 0, "")
		s.log.Info("emulator: webhook dropped (fault); the transcript can be fetched",
			"request_id", res.requestID, "transcription_id", res.transcriptionID,
			"job_id", elevenlabs.MetadataString(res.metadata, "job_id"))
		return
	}
	if !sleep(s.base, s.base, p.extra) {
		s.settle(idx, "canceled", 0, "")
		return
	}
	if p.duplicate {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if sleep(s.base, s.base, p.dupGap) {
				s.deliver(idx, res, p, true)
			}
		}()
	}
	s.deliver(idx, res, p, false)
}

// settle records the fate of a job's first webhook.
func (s *Server) settle(idx int, delivery string, status int, msg string) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.ledger[idx]
	c.Delivery, c.DeliveryStatus, c.DeliveryError = delivery, status, msg
	s.stats.WebhooksPending--
	switch delivery {
	case "delivered", "failed":
		c.DeliveredAt = now
	case "dropped":
		s.stats.WebhooksDropped++
	}
}

// deliver POSTs the signed webhook once: speech-to-text webhooks are never
// retried, whatever the receiver answers. dup marks a DuplicateWebhooks
// fault's second POST, which leaves the ledger's Delivery alone.
func (s *Server) deliver(idx int, res *result, p *plan, dup bool) {
	now := s.cfg.Now()
	metadata := res.metadata
	if p.metadataAsString && metadata != nil {
		// Marshalling a string cannot fail.
		metadata, _ = json.Marshal(string(metadata))
	}
	body, err := json.Marshal(webhookEnvelope{
		Type:           elevenlabs.WebhookType,
		EventTimestamp: now.Unix(),
		Data: webhookData{
			RequestID:       res.requestID,
			WebhookMetadata: metadata,
			Transcription:   res.chunk(),
		},
	})
	if err != nil {
		s.delivered(idx, res, dup, 0, "encode webhook: "+err.Error())
		return
	}
	req, err := http.NewRequestWithContext(s.base, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		s.delivered(idx, res, dup, 0, "build webhook request: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scribeq-emulator")
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(s.cfg.WebhookSecret, now, body))
	s.mu.Lock()
	s.stats.WebhooksSent++
	s.ledger[idx].Deliveries++
	if dup {
		s.stats.WebhooksDuplicated++
	}
	s.mu.Unlock()
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		if s.base.Err() != nil && !dup {
			s.settle(idx, "canceled", 0, "")
			return
		}
		s.delivered(idx, res, dup, 0, err.Error())
		return
	}
	// Drain a little so the connection can be reused; the answer's body
	// does not matter, only its status.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	msg := ""
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg = "receiver answered " + strconv.Itoa(resp.StatusCode)
	}
	s.delivered(idx, res, dup, resp.StatusCode, msg)
	if msg == "" {
		s.log.Info("emulator: webhook delivered", "request_id", res.requestID,
			"transcription_id", res.transcriptionID, "job_id", elevenlabs.MetadataString(res.metadata, "job_id"),
			"status", resp.StatusCode, "bytes", len(body), "duplicate", dup)
	}
}

// delivered records a POST's outcome: msg is empty on success.
func (s *Server) delivered(idx int, res *result, dup bool, status int, msg string) {
	s.mu.Lock()
	if msg == "" {
		s.stats.WebhooksDelivered++
	} else {
		s.stats.WebhooksFailed++
	}
	s.mu.Unlock()
	if !dup {
		if msg == "" {
			s.settle(idx, "delivered", status, "")
		} else {
			s.settle(idx, "failed", status, msg)
		}
	}
	if msg != "" {
		s.log.Warn("emulator: webhook not delivered; it will not be retried", "request_id", res.requestID,
			"transcription_id", res.transcriptionID, "job_id", elevenlabs.MetadataString(res.metadata, "job_id"),
			"status", status, "error", msg, "duplicate", dup)
	}
}
