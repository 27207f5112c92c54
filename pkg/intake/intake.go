// Package intake turns what a user names — files, folders, globs, lists of
// paths on stdin, CSV and JSONL manifests, .zip and .tar(.gz) archives, https
// URLs — into jobs: local audio is streamed into the AUDIO object store under
// its sha256, and each job goes onto JOBS with a `queued` event beside it.
//
// It works in two phases so a caller can show the cost before paying:
//
//	plan, err := in.Scan(ctx, req, onItem)    // read every item once: hash, probe, classify
//	fmt.Println(plan.Totals.Cost)             // estimate
//	results, err := plan.Queue(ctx, onProgress) // store objects, publish jobs
//
// A job's id is derived from the audio (its hash, or the URL) and the
// options, so submitting the same thing again is recognised and skipped, and
// an interrupted submit run again finishes what it had started (see claim.go).
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Request is one submit call.
type Request struct {
	// Sources are, in any mix: files; folders (searched recursively, skipping
	// dot-files); globs the shell did not expand (`calls/**/*.mp3`); "-" for
	// a list of paths or URLs read from Stdin; manifests (.csv, .jsonl);
	// archives (.zip, .tar, .tar.gz, .tgz); https URLs.
	Sources []string
	// Stdin is read when a source is "-": one path or URL per line, blank
	// lines and lines starting with # ignored.
	Stdin io.Reader
	// Include and Exclude are doublestar globs (`*.mp3`, `2024/**/*.wav`)
	// applied to files found in folders or by globs, and to archive
	// entries. A pattern without a slash matches the base name; one with a
	// slash matches the path relative to the folder, the glob's fixed
	// prefix, or the archive root. Empty Include admits everything.
	Include, Exclude []string
	// Options apply to every item; a manifest row's options override them.
	Options event.Options
	// Metadata is stored with every job; a manifest row's metadata is
	// merged over it. It does not change the job id.
	Metadata map[string]string
	// Batch names this submit call; default: the first source's name and
	// today's date ("calls.zip 2026-05-03").
	Batch string
	// Force queues again what was already submitted (as new jobs).
	Force bool
}

// Config configures an Intake. The zero value is usable.
type Config struct {
	// Limits refuse items before upload. Defaults: see Limits.
	Limits Limits
	// Pricing prices the estimate and is stored on every job. Defaults: see Pricing.
	Pricing Pricing
	// Process names this worker in events. Default "submit".
	Process string
	// RetryFor is how long an item keeps being retried while NATS is
	// unreachable before it is reported as an error. Default 5 minutes.
	RetryFor time.Duration
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	c.Pricing = c.Pricing.withDefaults()
	if c.Process == "" {
		c.Process = "submit"
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if err := c.Limits.validate(); err != nil {
		return err
	}
	return c.Pricing.validate()
}

// Intake submits jobs. It is safe for concurrent use; each Scan makes its
// own Plan.
type Intake struct {
	q   *queue.Queue
	cfg Config
	log *slog.Logger
	// Process names this worker in events (kept settable for callers of New).
	Process string
}

// New returns an Intake with the default Config.
func New(q *queue.Queue, logger *slog.Logger) *Intake {
	in, _ := NewWithConfig(q, Config{Logger: logger}) // defaults always validate
	return in
}

// NewWithConfig returns an Intake configured by cfg, or an error naming the
// bad field.
func NewWithConfig(q *queue.Queue, cfg Config) (*Intake, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	return &Intake{q: q, cfg: cfg, log: cfg.Logger, Process: cfg.Process}, nil
}

// Config returns the configuration in use, defaults filled in.
func (in *Intake) Config() Config { return in.cfg }

// Submit scans and queues every source and reports each item, in the order
// the sources named them. onResult, if set, is called as each item is
// settled (skipped items during the scan, the rest as they are queued). The
// error is only for failures that stop the whole call (a bad option, NATS
// unreachable, ctx done); a bad item is reported in its Result and the rest
// go on.
func (in *Intake) Submit(ctx context.Context, req Request, onResult func(Result)) ([]Result, error) {
	plan, err := in.Scan(ctx, req, func(r Result) {
		if r.Status != Ready && onResult != nil {
			onResult(r)
		}
	})
	if err != nil {
		return nil, err
	}
	return plan.Queue(ctx, func(p Progress) {
		if p.Result != nil && onResult != nil {
			onResult(*p.Result)
		}
	})
}

// Validate checks options before anything is read or sent, and fills in
// the default model. Its errors name the CLI flag.
func Validate(o *event.Options) error {
	return validate(o, func(name string) string { return "--" + name })
}

// validate checks o; field names the option as the user wrote it (a flag,
// a manifest column).
func validate(o *event.Options, field func(string) string) error {
	if o.Model == "" {
		o.Model = "scribe_v2"
	}
	switch o.Model {
	case "scribe_v1", "scribe_v2", "scribe_v1_experimental":
	default:
		return fmt.Errorf("%s %q: want scribe_v2 or scribe_v1", field("model"), o.Model)
	}
	switch o.Timestamps {
	case "", "none", "word", "character":
	default:
		return fmt.Errorf("%s %q: want word, character or none", field("timestamps"), o.Timestamps)
	}
	if o.NumSpeakers < 0 || o.NumSpeakers > 32 {
		return fmt.Errorf("%s %d: want 1 to 32", field("num-speakers"), o.NumSpeakers)
	}
	if len(o.Keyterms) > 0 && o.Model != "scribe_v2" {
		return fmt.Errorf("%s: only scribe_v2 accepts keyterms", field("keyterm"))
	}
	if len(o.Keyterms) > 1000 {
		return fmt.Errorf("%s: %d terms, at most 1000 are accepted", field("keyterm"), len(o.Keyterms))
	}
	for _, k := range o.Keyterms {
		if k == "" || len(k) >= 50 || len(strings.Fields(k)) > 5 || strings.ContainsAny(k, `<>{}[]\`) {
			return fmt.Errorf("%s %q: each term must be under 50 characters, at most 5 words, without <>{}[]\\", field("keyterm"), k)
		}
	}
	// The API rejects these combinations (ELEVENLABS.md, multichannel).
	if o.MultiChannel && (o.Diarize || o.NumSpeakers > 0) {
		return fmt.Errorf("%s: cannot be combined with diarize or num-speakers (each channel is one speaker)", field("multichannel"))
	}
	if o.EntityDetection != "" && !entityRE.MatchString(o.EntityDetection) {
		return fmt.Errorf("%s %q: want all, pii, phi, pci, other, offensive_language or an entity type", field("entity-detection"), o.EntityDetection)
	}
	return nil
}

var entityRE = regexp.MustCompile(`^[a-z][a-z_]*$`)

// JobID derives a job id (UUID-shaped) from what identifies the audio and
// the options that change the result. force adds a random part, so the
// same audio can be queued again as a new job.
func JobID(audioKey string, o event.Options, force bool) string {
	opts, _ := json.Marshal(o)
	h := sha256.New()
	h.Write([]byte("scribeq/job/v1\x00" + audioKey + "\x00"))
	h.Write(opts)
	if force {
		fmt.Fprintf(h, "\x00force:%d:%s", time.Now().UnixNano(), randomHex(8))
	}
	return uuidShape(h.Sum(nil)[:16], 0x80)
}

// uuidShape formats 16 bytes as a UUID with the given version nibble.
func uuidShape(b []byte, version byte) string {
	b[6] = (b[6] & 0x0f) | version
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// errPlanUsed is returned by a second Queue of the same Plan.
var errPlanUsed = errors.New("intake: plan already queued")
