// Package intake turns what a user names — files, folders, https URLs — into
// jobs: local audio is streamed into the AUDIO object store under its sha256,
// and each job goes onto JOBS with a `queued` event beside it.
//
// A job's id is derived from the audio (its hash, or the URL) and the
// options, so submitting the same thing again is recognised and skipped.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Request is one submit call.
type Request struct {
	// Sources are files, folders (searched recursively for audio and video
	// files) and https URLs.
	Sources []string
	Options event.Options
	// Metadata is stored with every job; it does not change the job id.
	Metadata map[string]string
	// Batch names this submit call; default a timestamp.
	Batch string
	// Force queues again what was already submitted (as new jobs).
	Force bool
}

// Status is what happened to one source.
type Status string

const (
	Queued    Status = "queued"
	Duplicate Status = "already-submitted"
	Skipped   Status = "skipped"
	Failed    Status = "error"
)

// Result reports one item.
type Result struct {
	Source string `json:"source"`
	JobID  string `json:"job_id,omitempty"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// Intake submits jobs.
type Intake struct {
	q   *queue.Queue
	log *slog.Logger
	// Process names this worker in events.
	Process string
}

// New returns an Intake.
func New(q *queue.Queue, logger *slog.Logger) *Intake {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Intake{q: q, log: logger, Process: "submit"}
}

// Validate checks options before anything is read or sent.
func Validate(o *event.Options) error {
	if o.Model == "" {
		o.Model = "scribe_v2"
	}
	switch o.Model {
	case "scribe_v1", "scribe_v2", "scribe_v1_experimental":
	default:
		return fmt.Errorf("--model %q: want scribe_v2 or scribe_v1", o.Model)
	}
	switch o.Timestamps {
	case "", "none", "word", "character":
	default:
		return fmt.Errorf("--timestamps %q: want word, character or none", o.Timestamps)
	}
	if o.NumSpeakers < 0 || o.NumSpeakers > 32 {
		return fmt.Errorf("--num-speakers %d: want 1 to 32", o.NumSpeakers)
	}
	if len(o.Keyterms) > 0 && o.Model != "scribe_v2" {
		return errors.New("--keyterm: only scribe_v2 accepts keyterms")
	}
	for _, k := range o.Keyterms {
		if len(k) >= 50 || len(strings.Fields(k)) > 5 || strings.ContainsAny(k, `<>{}[]\`) {
			return fmt.Errorf("--keyterm %q: each term must be under 50 characters, at most 5 words, without <>{}[]\\", k)
		}
	}
	return nil
}

// Submit queues every source and reports each one. onResult, if set, is
// called as each item finishes (for progress lines). The error is only for
// failures that stop the whole call (a bad option, NATS unreachable); a bad
// item is reported in its Result and the rest go on.
func (in *Intake) Submit(ctx context.Context, req Request, onResult func(Result)) ([]Result, error) {
	if err := Validate(&req.Options); err != nil {
		return nil, err
	}
	if req.Batch == "" {
		req.Batch = time.Now().UTC().Format("20060102T150405Z")
	}
	var results []Result
	report := func(r Result) {
		results = append(results, r)
		if onResult != nil {
			onResult(r)
		}
	}
	for _, src := range req.Sources {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		if isURL(src) {
			report(in.submitURL(ctx, req, src))
			continue
		}
		files, skipped, err := expand(src)
		if err != nil {
			report(Result{Source: src, Status: Failed, Reason: err.Error()})
			continue
		}
		for _, s := range skipped {
			report(Result{Source: s, Status: Skipped, Reason: "not an audio or video file"})
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return results, err
			}
			report(in.submitFile(ctx, req, f))
		}
	}
	return results, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// expand lists the media files under src. A file named explicitly is
// checked too, so a typo'd document is reported rather than uploaded.
func expand(src string) (files, skipped []string, err error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", src, err)
	}
	if !fi.IsDir() {
		if !audio.IsMediaExt(src) {
			return nil, []string{src}, nil
		}
		return []string{src}, nil, nil
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != src && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if audio.IsMediaExt(p) {
			files = append(files, p)
		} else {
			skipped = append(skipped, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("walk %s: %w", src, err)
	}
	sort.Strings(files)
	return files, skipped, nil
}

func (in *Intake) submitURL(ctx context.Context, req Request, raw string) Result {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Result{Source: raw, Status: Failed, Reason: "not a valid URL"}
	}
	if u.Scheme != "https" {
		return Result{Source: raw, Status: Failed, Reason: "only https URLs can be sent to ElevenLabs as source_url"}
	}
	job := &event.Job{
		Source: event.Source{URL: u.String()},
	}
	job.JobID = JobID("url:"+job.Source.URL, req.Options, req.Force)
	return in.queue(ctx, req, raw, job)
}

func (in *Intake) submitFile(ctx context.Context, req Request, path string) Result {
	res := Result{Source: path}
	sum, size, dur, err := hashFile(path)
	if err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	res.Bytes = size
	if size == 0 {
		res.Status, res.Reason = Skipped, "empty file"
		return res
	}
	abs, _ := filepath.Abs(path)
	job := &event.Job{
		Source: event.Source{Object: sum, Path: abs, Name: filepath.Base(path), Size: size, DurationSecs: dur},
	}
	job.JobID = JobID("sha256:"+sum, req.Options, req.Force)
	return in.queue(ctx, req, path, job)
}

// queue claims the job id, stores the audio, and publishes job and event.
func (in *Intake) queue(ctx context.Context, req Request, src string, job *event.Job) Result {
	res := Result{Source: src, JobID: job.JobID, Bytes: job.Source.Size}
	job.V, job.BatchID, job.Options, job.Metadata, job.At = event.Version, req.Batch, req.Options, req.Metadata, time.Now().UTC()
	log := in.log.With("job_id", job.JobID, "source", src)

	// The INTAKE entry is the cross-machine claim: created atomically, and
	// marked done only after the job is published. A crash in between
	// leaves "claimed", which a re-run finishes instead of skipping.
	entry, err := in.q.Intake.Get(ctx, job.JobID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if _, err := in.q.Intake.Create(ctx, job.JobID, []byte("claimed")); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			res.Status, res.Reason = Failed, "claim job id: "+err.Error()
			return res
		}
	case err != nil:
		res.Status, res.Reason = Failed, "read intake record: "+err.Error()
		return res
	case string(entry.Value()) == "queued":
		res.Status, res.Reason = Duplicate, "same audio and options were submitted before (use --force to queue it again)"
		return res
	}

	if job.Source.Object != "" {
		if err := in.store(ctx, job.Source.Path, job.Source.Object, job.Source.Size); err != nil {
			res.Status, res.Reason = Failed, err.Error()
			return res
		}
	}
	if _, err := in.q.PublishJob(ctx, job); err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	if err := in.q.PublishEvent(ctx, &event.Event{
		Type: event.TypeQueued, JobID: job.JobID, At: job.At, Job: job, Process: in.Process,
	}); err != nil {
		res.Status, res.Reason = Failed, err.Error()
		return res
	}
	if _, err := in.q.Intake.Put(ctx, job.JobID, []byte("queued")); err != nil {
		// The job is queued; only the duplicate check of a re-run suffers.
		log.Warn("could not mark job queued in intake record", "err", err)
	}
	log.Debug("job queued")
	res.Status = Queued
	return res
}

// store streams the file into the AUDIO bucket unless the same bytes are
// already there.
func (in *Intake) store(ctx context.Context, path, name string, size int64) error {
	if info, err := in.q.Audio.GetInfo(ctx, name); err == nil && int64(info.Size) == size {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if _, err := in.q.Audio.Put(ctx, jetstream.ObjectMeta{Name: name, Description: filepath.Base(path)}, f); err != nil {
		return fmt.Errorf("store %s in object store: %w", path, err)
	}
	return nil
}

// hashFile reads the file once: sha256, size and, for WAV, the duration.
func hashFile(path string) (sum string, size int64, duration float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	pr, pw := io.Pipe()
	done := make(chan float64, 1)
	go func() {
		var d float64
		if hdr, err := audio.ReadWAVHeader(pr); err == nil {
			d = hdr.Duration
		}
		_, _ = io.Copy(io.Discard, pr)
		done <- d
	}()
	size, err = io.Copy(io.MultiWriter(h, pw), f)
	pw.CloseWithError(err)
	duration = <-done
	if err != nil {
		return "", 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, duration, nil
}

// JobID derives a job id (UUID-shaped) from what identifies the audio and
// the options that change the result. force adds a random part, so the
// same audio can be queued again as a new job.
func JobID(audioKey string, o event.Options, force bool) string {
	opts, _ := json.Marshal(o)
	h := sha256.New()
	h.Write([]byte("scribeq/job/v1\x00" + audioKey + "\x00"))
	h.Write(opts)
	if force {
		fmt.Fprintf(h, "\x00force:%d", time.Now().UnixNano())
	}
	b := h.Sum(nil)[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8: custom, name-derived
	b[8] = (b[8] & 0x3f) | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
