// Package doctor checks that a scribeq deployment can work: NATS with
// JetStream and every stream, bucket and consumer scribeq uses; Postgres
// reachable with its migrations current; the ElevenLabs API key and the
// workspace webhook (configured, HMAC, not disabled); and the public webhook
// URL answering as scribeq's ingress does. Each check gives a Result with
// what it saw and, for every problem, what to do about it.
//
// The checks only read: they create nothing, migrate nothing and take no
// lock, so they are safe to run against production at any time. The one
// request with a body, the webhook URL probe, is unsigned and refused by
// the ingress before it is parsed.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Status is a check's verdict.
type Status string

const (
	// OK: nothing to do.
	OK Status = "ok"
	// Warn: it works, but something deserves a look.
	Warn Status = "warn"
	// Fail: scribeq cannot work (or will lose work) until it is fixed.
	Fail Status = "fail"
	// Skip: the check did not run (nothing to check, or a check it depends
	// on failed); Detail says why.
	Skip Status = "skip"
)

// Result is one check's outcome.
type Result struct {
	// Group is the component: nats, postgres, elevenlabs or webhook.
	Group string `json:"group"`
	// Name identifies the check within its group, e.g. "stream JOBS".
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is what was seen: counts, versions, the error.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do; set for Warn and Fail.
	Fix string `json:"fix,omitempty"`
}

// Component groups, in report order.
const (
	GroupNATS       = "nats"
	GroupPostgres   = "postgres"
	GroupElevenLabs = "elevenlabs"
	GroupWebhook    = "webhook"
)

// Config says what to check. Zero values take the documented defaults.
type Config struct {
	// NatsURL of the server to check. Empty fails the NATS checks.
	NatsURL string
	// Replicas each stream and bucket should have (1 on one server, 3 on a
	// cluster); fewer is a warning. Default 1.
	Replicas int
	// IdleAfter: a consumer with messages pending that has delivered
	// nothing for this long and has no pull waiting has no worker. Default 2m.
	IdleAfter time.Duration

	// DatabaseURL of Postgres. Empty fails the Postgres checks.
	DatabaseURL string

	// APIKey for ElevenLabs. Empty skips the ElevenLabs checks.
	APIKey string
	// BaseURL of the ElevenLabs API. Default https://api.elevenlabs.io.
	BaseURL string
	// WebhookID is the webhook the submitter sends results to; empty means
	// every speech-to-text webhook of the workspace, as the API does.
	WebhookID string

	// WebhookURL is the public URL ElevenLabs posts to (the ingress's
	// webhook path). With it, the workspace webhook must point there and the
	// URL must answer as scribeq's ingress; without it both are skipped.
	WebhookURL string

	// Skip names groups not to check (nats, postgres, elevenlabs, webhook).
	Skip []string
	// Timeout bounds each group's checks. Default 10s.
	Timeout time.Duration
	// HTTPClient for ElevenLabs and the webhook probe. Default: a client
	// with Timeout; redirects are never followed.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.IdleAfter <= 0 {
		c.IdleAfter = 2 * time.Minute
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://api.elevenlabs.io"
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.Timeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Report is every check's result, grouped in the order nats, postgres,
// elevenlabs, webhook.
type Report struct {
	Results []Result `json:"results"`
}

// Failed reports whether any check failed.
func (r Report) Failed() bool { return r.count(Fail) > 0 }

func (r Report) count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Find returns the result of the named check, or nil.
func (r Report) Find(group, name string) *Result {
	for i := range r.Results {
		if r.Results[i].Group == group && r.Results[i].Name == name {
			return &r.Results[i]
		}
	}
	return nil
}

// Run runs every group's checks at once (a dead component costs one
// timeout, not four) and returns their results in report order.
func Run(ctx context.Context, cfg Config) Report {
	cfg = cfg.withDefaults()
	groups := []struct {
		name  string
		check func(context.Context, Config) []Result
	}{
		{GroupNATS, checkNATS},
		{GroupPostgres, checkPostgres},
		{GroupElevenLabs, checkElevenLabs},
		{GroupWebhook, checkWebhookURL},
	}
	out := make([][]Result, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		skipped := false
		for _, s := range cfg.Skip {
			skipped = skipped || strings.EqualFold(strings.TrimSpace(s), g.name)
		}
		if skipped {
			out[i] = []Result{{Group: g.name, Name: "all", Status: Skip, Detail: "skipped (--skip " + g.name + ")"}}
			continue
		}
		wg.Go(func() {
			gctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			out[i] = g.check(gctx, cfg)
		})
	}
	wg.Wait()
	var r Report
	for _, rs := range out {
		r.Results = append(r.Results, rs...)
	}
	return r
}

var marks = map[Status]string{OK: "✓", Warn: "!", Fail: "✗", Skip: "-"}

var titles = map[string]string{
	GroupNATS: "NATS", GroupPostgres: "Postgres", GroupElevenLabs: "ElevenLabs", GroupWebhook: "Webhook URL",
}

// WriteText prints the report for people: a ✓ / ! / ✗ / - line per check
// under its component, the fix under every problem, and a summary line.
func (r Report) WriteText(w io.Writer) error {
	width := 0
	for _, res := range r.Results {
		width = max(width, len(res.Name))
	}
	var b strings.Builder
	group := ""
	for _, res := range r.Results {
		if res.Group != group {
			if group != "" {
				b.WriteString("\n")
			}
			group = res.Group
			title := titles[group]
			if title == "" {
				title = group
			}
			b.WriteString(title + "\n")
		}
		fmt.Fprintf(&b, "  %s %-*s  %s\n", marks[res.Status], width, res.Name, res.Detail)
		if res.Fix != "" && (res.Status == Warn || res.Status == Fail) {
			for i, line := range strings.Split(res.Fix, "\n") {
				prefix := "fix: "
				if i > 0 {
					prefix = "     "
				}
				// Under the detail column: "  ✓ " + name + "  ".
				fmt.Fprintf(&b, "%*s%s%s\n", width+6, "", prefix, line)
			}
		}
	}
	fails, warns := r.count(Fail), r.count(Warn)
	b.WriteString("\n")
	switch {
	case fails == 0 && warns == 0:
		b.WriteString("all checks passed\n")
	default:
		fmt.Fprintf(&b, "%s failed, %s\n", plural(fails, "check"), plural(warns, "warning"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON object: {"ok": bool, "results": [...]}.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	results := r.Results
	if results == nil {
		results = []Result{}
	}
	return enc.Encode(struct {
		OK      bool     `json:"ok"`
		Results []Result `json:"results"`
	}{!r.Failed(), results})
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// results collects one group's results.
type results struct {
	group string
	list  []Result
}

func (rs *results) add(name string, s Status, detail, fix string) {
	rs.list = append(rs.list, Result{Group: rs.group, Name: name, Status: s, Detail: detail, Fix: fix})
}

func (rs *results) ok(name, detail string)        { rs.add(name, OK, detail, "") }
func (rs *results) warn(name, detail, fix string) { rs.add(name, Warn, detail, fix) }
func (rs *results) fail(name, detail, fix string) { rs.add(name, Fail, detail, fix) }
func (rs *results) skip(name, detail string)      { rs.add(name, Skip, detail, "") }

// verdict accumulates the problems one check finds: the worst status
// wins, and every problem's note and fix are kept.
type verdict struct {
	status Status
	notes  []string
	fixes  []string
}

func (v *verdict) problem(s Status, note, fix string) {
	if s == Fail || v.status == "" || v.status == OK {
		v.status = s
	}
	v.notes = append(v.notes, note)
	if fix != "" {
		v.fixes = append(v.fixes, fix)
	}
}

// emit adds the check with detail, followed by the problems' notes.
func (v *verdict) emit(rs *results, name, detail string) {
	s := v.status
	if s == "" {
		s = OK
	}
	if len(v.notes) > 0 {
		detail += "; " + strings.Join(v.notes, "; ")
	}
	rs.add(name, s, detail, strings.Join(v.fixes, "\n"))
}
