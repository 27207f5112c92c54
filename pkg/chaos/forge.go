package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// ForgedPrefix starts the request id (and fake job ids) of every forged
// webhook, so that a row one of them created is found with one LIKE.
const ForgedPrefix = "forged-"

// Forgery is one kind of bad webhook the barrage sends.
type Forgery string

// The forgeries. Every one must be refused (4xx) before anything is
// published; SignedNotJSON carries a valid signature, so the ingress may
// refuse it or keep it as a dead letter, but it must never become a row.
const (
	WrongSecret   Forgery = "wrong_secret"
	FlippedByte   Forgery = "flipped_byte"
	Stale         Forgery = "stale"         // signed 31 minutes ago
	Future        Forgery = "future"        // signed 10 minutes ahead
	EditedReplay  Forgery = "edited_replay" // a signed body, its text edited afterwards
	Oversized     Forgery = "oversized"     // signed, larger than the ingress accepts
	SignedNotJSON Forgery = "signed_not_json"
	NoSignature   Forgery = "no_signature"
	BadHeader     Forgery = "bad_header"
)

// Forgeries lists them all, in the order the barrage cycles through them.
var Forgeries = []Forgery{WrongSecret, FlippedByte, Stale, Future, EditedReplay, Oversized, SignedNotJSON, NoSignature, BadHeader}

// Forge builds forged webhook n of kind k. It names jobID (a real job, to
// tempt the ingress into completing it with a wrong transcript) and a
// request id under ForgedPrefix. oversize is the body size for Oversized.
func Forge(k Forgery, n int, jobID string, now time.Time, oversize int) (body []byte, signature string) {
	reqID := fmt.Sprintf("%s%s-%d", ForgedPrefix, k, n)
	text := "forged transcript " + reqID
	payload := map[string]any{
		"type":            "speech_to_text_transcription",
		"event_timestamp": now.Unix(),
		"data": map[string]any{
			"request_id":       reqID,
			"webhook_metadata": map[string]string{"job_id": jobID},
			"transcription": map[string]any{
				"language_code": "en", "language_probability": 1, "text": text,
				"words":            []any{map[string]any{"text": text, "start": 0, "end": 1, "type": "word"}},
				"transcription_id": reqID,
			},
		},
	}
	body, _ = json.Marshal(payload)
	sign := func(secret string, t time.Time, b []byte) string { return elevenlabs.Sign(secret, t, b) }
	switch k {
	case WrongSecret:
		return body, sign("not-the-"+webhookSecret, now, body)
	case FlippedByte:
		sig := sign(webhookSecret, now, body)
		i := bytes.Index(body, []byte(text)) // flip a byte of the text: still JSON
		body[i] ^= 0x01
		return body, sig
	case Stale:
		return body, sign(webhookSecret, now.Add(-31*time.Minute), body)
	case Future:
		return body, sign(webhookSecret, now.Add(10*time.Minute), body)
	case EditedReplay:
		sig := sign(webhookSecret, now, body)
		return bytes.Replace(body, []byte("forged transcript"), []byte("edited transcript"), 1), sig
	case Oversized:
		pad := strings.Repeat("x", max(oversize-len(body), 1))
		payload["padding"] = pad
		body, _ = json.Marshal(payload)
		return body, sign(webhookSecret, now, body)
	case SignedNotJSON:
		body = []byte("this is not JSON {" + reqID)
		return body, sign(webhookSecret, now, body)
	case NoSignature:
		return body, ""
	default: // BadHeader
		return body, "t=yesterday,v0=zz"
	}
}

// SendForged posts one forged webhook to the ingress as if from clientIP
// (the ingress must trust the harness as a proxy, see ForgeConfig) and
// returns the status it answered.
func (c *Cluster) SendForged(ctx context.Context, body []byte, signature, clientIP string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.IngressURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", clientIP)
	if signature != "" {
		req.Header.Set("ElevenLabs-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// ForgeConfig lets the ingress tell forgers from the emulator, as it would
// tell an attacker from ElevenLabs: the harness is a trusted proxy whose
// X-Forwarded-For names a client of its own, so a forger's rate limit is
// not the emulator's. maxBody is the ingress's --max-body-bytes.
func ForgeConfig(c *Config, maxBody int) {
	c.IngressArgs = append(c.IngressArgs, "--trusted-proxies=127.0.0.1/32", fmt.Sprintf("--max-body-bytes=%d", maxBody))
}

// ForgedRows counts the rows forged webhooks left: transcripts under
// ForgedPrefix or naming a fake job, and jobs under it.
func ForgedRows(ctx context.Context, db DB) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM transcripts WHERE request_id LIKE $1 OR transcription_id LIKE $1 OR job_id LIKE $1)
		     + (SELECT count(*) FROM jobs WHERE job_id LIKE $1 OR request_id LIKE $1)`, ForgedPrefix+"%").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("chaos: count forged rows: %w", err)
	}
	return n, nil
}
