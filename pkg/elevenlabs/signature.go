package elevenlabs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries `t=<unix>,v0=<hex>` on every webhook POST.
const SignatureHeader = "ElevenLabs-Signature"

// Verification failures. Each is matched with errors.Is; none of them carries
// a secret or the expected hash.
var (
	ErrMissingSignature = errors.New("missing signature header")
	ErrNoV0Signature    = errors.New("no signature hash found with expected scheme v0")
	ErrBadTimestamp     = errors.New("signature timestamp is not a unix time")
	ErrStaleSignature   = errors.New("signature timestamp outside the tolerance zone")
	ErrFutureSignature  = errors.New("signature timestamp too far in the future")
	ErrSignatureInvalid = errors.New("signature hash does not match")
	ErrNoSecrets        = errors.New("no webhook secret configured")
)

// Sign returns the header value ElevenLabs sends for body at time t: the hex
// HMAC-SHA256, keyed by secret, of "<unix t>.<body>". No spaces after the
// comma: the official SDK verifiers split on "," without trimming.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v0=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verifier checks ElevenLabs-Signature headers against the raw body.
type Verifier struct {
	// Secrets are tried in order; more than one allows rotation. Empty
	// strings are ignored.
	Secrets []string
	// Tolerance is how old a timestamp may be. Default 30 minutes, as the SDKs.
	Tolerance time.Duration
	// FutureSkew is how far ahead of our clock a timestamp may be. The SDKs do
	// not bound it; we do, default 5 minutes, so a leaked signed body cannot
	// be held back and replayed later.
	FutureSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verify returns nil when header carries a v0 signature of body by one of the
// secrets with a timestamp inside the window. It never parses body.
func (v *Verifier) Verify(header string, body []byte) error {
	// An empty secret would accept anyone's HMAC keyed by "" (an unset env
	// var, say), so it never counts as configured.
	secrets := make([]string, 0, len(v.Secrets))
	for _, s := range v.Secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return ErrNoSecrets
	}
	if header == "" {
		return ErrMissingSignature
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		switch {
		case strings.HasPrefix(part, "t="):
			ts = part[2:]
		case strings.HasPrefix(part, "v0="):
			if b, err := hex.DecodeString(part[3:]); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if len(sigs) == 0 {
		return ErrNoV0Signature
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol, skew := v.Tolerance, v.FutureSkew
	if tol <= 0 {
		tol = 30 * time.Minute
	}
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	at := time.Unix(unix, 0)
	n := now()
	if at.Before(n.Add(-tol)) {
		return ErrStaleSignature
	}
	if at.After(n.Add(skew)) {
		return ErrFutureSignature
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return ErrSignatureInvalid
}
