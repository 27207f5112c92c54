// Package logtest captures what code logs, through both of the handlers
// the commands use (JSON and text), so that tests can assert on the lines
// and prove that secrets never reach them. Test-only.
package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Capture is a logger whose every record is written twice, once by a
// slog.JSONHandler and once by a slog.TextHandler, at debug level.
type Capture struct {
	mu   sync.Mutex
	json bytes.Buffer
	text bytes.Buffer
	log  *slog.Logger
}

// New returns an empty capture.
func New() *Capture {
	c := &Capture{}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	c.log = slog.New(tee{
		slog.NewJSONHandler(lockedWriter{&c.mu, &c.json}, opts),
		slog.NewTextHandler(lockedWriter{&c.mu, &c.text}, opts),
	})
	return c
}

// Logger is what the code under test logs to.
func (c *Capture) Logger() *slog.Logger { return c.log }

// String is everything logged, JSON lines then text lines.
func (c *Capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.json.String() + c.text.String()
}

// Lines are the JSON records, decoded.
func (c *Capture) Lines(t testing.TB) []map[string]any {
	t.Helper()
	c.mu.Lock()
	raw := c.json.String()
	c.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(raw), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("logtest: line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// Has reports whether a JSON record has msg and every attribute in attrs
// (key, value, key, value…; values compared as strings).
func (c *Capture) Has(t testing.TB, msg string, attrs ...string) bool {
	t.Helper()
	for _, l := range c.Lines(t) {
		if l["msg"] != msg {
			continue
		}
		match := true
		for i := 0; i+1 < len(attrs); i += 2 {
			if s, _ := l[attrs[i]].(string); s != attrs[i+1] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// RequireAbsent fails t if any secret, or any 8-character piece of one,
// appears in text (a log, an error, a command's output): a truncated or
// partly masked secret is still a leak.
func RequireAbsent(t testing.TB, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatalf("logtest: empty secret")
		}
		for _, piece := range pieces(s) {
			if i := strings.Index(text, piece); i >= 0 {
				lo, hi := max(0, i-80), min(len(text), i+len(piece)+80)
				t.Fatalf("%s leaks a secret (%q found): …%s…", what, piece, text[lo:hi])
			}
		}
	}
}

func pieces(s string) []string {
	const n = 8
	if len(s) <= n {
		return []string{s}
	}
	out := make([]string, 0, len(s)-n+1)
	for i := 0; i+n <= len(s); i++ {
		out = append(out, s[i:i+n])
	}
	return out
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// tee sends each record to every handler.
type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range t {
		if err := h.Handle(ctx, r.Clone()); err != nil {
			return err
		}
	}
	return nil
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t tee) WithGroup(name string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
