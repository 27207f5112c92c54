package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
	"github.com/scribeq/scribeq/pkg/query"
)

// FilterFlags select jobs, the same way for jobs, search, export and watch.
type FilterFlags struct {
	State    []string          `name:"state" enum:"queued,submitted,completed,failed,canceled" placeholder:"STATE" help:"Only jobs in this state (repeatable): queued, submitted, completed, failed, canceled."`
	Batch    string            `name:"batch" placeholder:"ID|NAME" help:"Only jobs of this batch: its id, or its name (every batch of that name)."`
	Since    string            `name:"since" placeholder:"WHEN" help:"Only jobs queued since then: a duration back from now (24h, 7d) or a date (2026-11-01, RFC 3339)."`
	Until    string            `name:"until" placeholder:"WHEN" help:"Only jobs queued before then (same forms as --since)."`
	Metadata map[string]string `name:"metadata" mapsep:"," placeholder:"KEY=VALUE" help:"Only jobs with this metadata (repeatable; all must match)."`
	Language string            `name:"language" help:"Only transcripts in this language (en, eng or english)."`
	Job      []string          `name:"job" placeholder:"ID" help:"Only these job ids (repeatable)."`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (f FilterFlags) filter(now time.Time) (query.Filter, error) {
	out := query.Filter{States: f.State, Metadata: f.Metadata, Language: f.Language, JobIDs: f.Job}
	if uuidRE.MatchString(f.Batch) {
		out.BatchID = f.Batch
	} else {
		out.BatchName = f.Batch
	}
	var err error
	if out.Since, err = query.ParseWhen(f.Since, now); err != nil {
		return out, fmt.Errorf("--since: %w", err)
	}
	if out.Until, err = query.ParseWhen(f.Until, now); err != nil {
		return out, fmt.Errorf("--until: %w", err)
	}
	return out, nil
}

// open reads the filter, then connects to the database for reading.
func (f FilterFlags) open(ctx context.Context, g *Globals, url string) (query.Filter, *query.DB, error) {
	qf, err := f.filter(time.Now())
	if err != nil {
		return qf, nil, err
	}
	db, err := openQuery(ctx, g, url)
	return qf, db, err
}

// ReadDBFlags name the database for the commands that only read, which
// may be given a role that cannot write (scribeq_read in
// deploy/postgres/roles.sql) while the sink keeps DATABASE_URL.
type ReadDBFlags struct {
	DBFlags         `embed:""`
	ReadDatabaseURL string `name:"read-database-url" env:"SCRIBEQ_READ_DATABASE_URL" placeholder:"URL" help:"Postgres URL for reading only (a read-only role); used instead of DATABASE_URL when set."`
}

// readURL is --read-database-url when set, else --database-url (and,
// when both are empty, the dev process's database).
func (f ReadDBFlags) readURL() string {
	if f.ReadDatabaseURL != "" {
		return f.ReadDatabaseURL
	}
	return f.DatabaseURL
}

// JobsCmd lists jobs.
type JobsCmd struct {
	ReadDBFlags `embed:""`
	FilterFlags `embed:""`
	Sort        string `name:"sort" default:"queued_at" help:"Sort by queued_at, completed_at, duration, cost or name; prefix - or + for the direction."`
	Limit       int    `name:"limit" default:"50" help:"Rows per page (at most 10000)."`
	After       string `name:"after" placeholder:"CURSOR" help:"The next page: the cursor the previous page printed."`
	JSON        bool   `name:"json" xor:"format" help:"Print JSON lines, one job per line."`
	CSV         bool   `name:"csv" xor:"format" help:"Print CSV with a header row."`
}

func (c *JobsCmd) Run(ctx context.Context, g *Globals) error {
	f, db, err := c.open(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, next, err := db.Jobs(ctx, f, query.Page{Limit: c.Limit, After: c.After, Sort: c.Sort})
	if err != nil {
		return err
	}
	switch {
	case c.JSON:
		if err := printJSONLines(rows); err != nil {
			return err
		}
	case c.CSV:
		w := csv.NewWriter(os.Stdout)
		_ = w.Write([]string{"job_id", "batch_id", "batch_name", "state", "name", "path", "url", "archive", "entry",
			"duration_secs", "language", "cost", "currency", "queued_at", "completed_at", "error", "convert_calls", "request_id"})
		for _, r := range rows {
			_ = w.Write([]string{r.JobID, r.BatchID, r.BatchName, r.State, r.Name, r.Path, r.URL, r.Archive, r.Entry,
				optFloat(r.DurationSecs, 3), r.Language, optFloat(r.Cost, 4), r.Currency, optTime(r.QueuedAt, time.RFC3339),
				optTime(r.CompletedAt, time.RFC3339), r.Error, strconv.Itoa(r.ConvertCalls), r.RequestID})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
	default:
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSTATE\tNAME\tBATCH\tDURATION\tLANG\tCOST\tQUEUED\tERROR")
		for _, r := range rows {
			dur := "-"
			if r.DurationSecs != nil {
				dur = clock(*r.DurationSecs)
				if r.DurationEstimated {
					dur = "~" + dur
				}
			}
			cost := "-"
			if r.Cost != nil {
				cost = money(*r.Cost) + " " + r.Currency
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.JobID[:min(8, len(r.JobID))], r.State, clip(r.Name, 40),
				clip(r.BatchName, 24), dur, dashIfEmpty(r.Language), cost, optTime(r.QueuedAt, time.DateTime), clip(r.Error, 50))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(rows) == 0 {
			fmt.Fprintln(os.Stderr, "no jobs match")
		}
	}
	if next != "" {
		fmt.Fprintf(os.Stderr, "more: add --after %s\n", next)
	}
	return nil
}

// SearchCmd searches the transcripts.
type SearchCmd struct {
	ReadDBFlags `embed:""`
	FilterFlags `embed:""`
	Query       string `arg:"" name:"query" help:"Words to find. \"a phrase\" in quotes, 'or' between alternatives, -word to exclude; stemmed in each transcript's language."`
	Limit       int    `name:"limit" default:"20" help:"Most hits to print."`
	JSON        bool   `name:"json" help:"Print JSON lines, one hit per line."`
}

func (c *SearchCmd) Run(ctx context.Context, g *Globals) error {
	f, db, err := c.open(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	hits, err := db.Search(ctx, c.Query, f, c.Limit)
	if errors.Is(err, query.ErrEmptyQuery) {
		return fmt.Errorf("search %q: %w (only stop words or symbols?)", c.Query, err)
	}
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSONLines(hits)
	}
	if len(hits) == 0 {
		fmt.Fprintln(os.Stderr, "no matches")
		return nil
	}
	on, off := "**", "**"
	if isTerminal(os.Stdout) {
		on, off = "\x1b[1;33m", "\x1b[0m"
	}
	for _, h := range hits {
		who := ""
		if h.Speaker != "" {
			who = " " + export.SpeakerLabel(h.Speaker) + ":"
		} else if h.Channel != nil {
			who = fmt.Sprintf(" Channel %d:", *h.Channel+1)
		}
		snippet := strings.NewReplacer(query.SnippetStart, on, query.SnippetStop, off, "\n", " ").Replace(h.Snippet)
		fmt.Printf("%s  [%s]%s %s\n", h.Name, clock(h.Start), who, snippet)
		fmt.Printf("    job %s  at %.1fs  (scribeq show %s)\n", h.JobID, h.Start, h.JobID)
	}
	return nil
}

// ExportCmd renders transcripts to files.
type ExportCmd struct {
	ReadDBFlags `embed:""`
	FilterFlags `embed:""`
	Format      string  `name:"format" short:"f" default:"srt" help:"srt, vtt, txt, json or csv."`
	Out         string  `name:"out" short:"o" placeholder:"DIR" help:"Write one file per transcript into DIR (created if missing). Without it, a single transcript goes to stdout."`
	MaxCueSecs  float64 `name:"max-cue-secs" default:"7" help:"Longest subtitle cue, in seconds."`
	MaxLineLen  int     `name:"max-line-chars" default:"42" help:"Longest subtitle line, in characters."`
	MaxLines    int     `name:"max-lines" default:"2" help:"Lines per cue."`
	PauseSecs   float64 `name:"pause-secs" default:"0.8" help:"A silence this long starts a new cue."`
	Speakers    string  `name:"speakers" enum:"auto,on,off" default:"auto" help:"Speaker labels: auto (when there is more than one), on or off."`
	Timestamps  bool    `name:"timestamps" help:"txt: start each paragraph with [hh:mm:ss]."`
	Additional  bool    `name:"additional" help:"Also write the formats ElevenLabs returned itself (additional_formats), byte for byte; needs --out."`
}

func (c *ExportCmd) Run(ctx context.Context, g *Globals) error {
	format, err := export.ParseFormat(c.Format)
	if err != nil {
		return err
	}
	if c.Additional && c.Out == "" {
		return errors.New("export --additional: give --out DIR")
	}
	opts := export.Options{MaxCueSecs: c.MaxCueSecs, MaxLineChars: c.MaxLineLen, MaxLines: c.MaxLines,
		PauseSecs: c.PauseSecs, Speakers: export.SpeakerLabels(c.Speakers), Timestamps: c.Timestamps}
	f, db, err := c.open(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	if c.Out != "" {
		if err := os.MkdirAll(c.Out, 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	var written, skipped int
	err = db.Transcripts(ctx, f, func(t *query.TranscriptRow) error {
		if c.Out == "" && written > 0 {
			return errors.New("more than one transcript matches: give --out DIR, or narrow the filter (--job ID)")
		}
		var words []elevenlabs.Word
		if err := json.Unmarshal(t.Words, &words); err != nil {
			return fmt.Errorf("export: decode words of job %s: %w", t.JobID, err)
		}
		doc := &export.Doc{JobID: t.JobID, RequestID: t.RequestID, TranscriptionID: t.TranscriptionID,
			Language: t.Language, DurationSecs: t.DurationSecs, Words: words}
		base := t.FileBase()
		var w io.Writer = os.Stdout
		var file *os.File
		if c.Out != "" {
			if file, err = os.Create(filepath.Join(c.Out, base+"."+format.Extension())); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			w = file
		}
		err := export.Render(w, format, doc, opts)
		if file != nil {
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				_ = os.Remove(file.Name())
			}
		}
		if errors.Is(err, export.ErrNoTimestamps) {
			fmt.Fprintf(os.Stderr, "skipped %s (job %s): transcribed without timestamps, so no %s; txt, json and csv work\n", t.Name, t.JobID, format)
			skipped++
			return nil
		}
		if err != nil {
			return fmt.Errorf("export job %s: %w", t.JobID, err)
		}
		written++
		if c.Additional {
			files, err := export.Additional(t.Transcription)
			if err != nil {
				return fmt.Errorf("export job %s: %w", t.JobID, err)
			}
			seen := map[string]int{}
			for _, af := range files {
				name := af.Name(base)
				if seen[name]++; seen[name] > 1 {
					name = fmt.Sprintf("%s.%d", name, seen[name])
				}
				if err := os.WriteFile(filepath.Join(c.Out, name), af.Content, 0o644); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.Out != "" {
		fmt.Fprintf(os.Stderr, "wrote %d %s files to %s\n", written, format, c.Out)
	}
	if written == 0 && skipped == 0 {
		return &exitError{code: 3, msg: "no transcript matches"}
	}
	if skipped > 0 {
		return &exitError{code: 3, msg: fmt.Sprintf("%d transcripts had no timestamps for %s", skipped, format)}
	}
	return nil
}

// WatchCmd follows jobs until they are all finished.
type WatchCmd struct {
	ReadDBFlags `embed:""`
	FilterFlags `embed:""`
	Interval    time.Duration `name:"interval" default:"2s" help:"How often to look."`
	Timeout     time.Duration `name:"timeout" default:"0" help:"Give up after this long (0: never)."`
}

func (c *WatchCmd) Run(ctx context.Context, g *Globals) error {
	f, db, err := c.open(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	if f.IsZero() {
		fmt.Fprintln(os.Stderr, "watching every job (use --batch to follow one batch)")
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	tty := isTerminal(os.Stdout)
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	last := ""
	for {
		p, err := db.BatchProgress(ctx, f)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if p != nil {
			line := progressLine(p, time.Now())
			switch {
			case tty:
				fmt.Printf("\r\x1b[K%s", line)
			case line != last:
				fmt.Println(line)
			}
			last = line
			if p.Total > 0 && p.Done == p.Total {
				if tty {
					fmt.Println()
				}
				if n := p.Counts["failed"]; n > 0 {
					return &exitError{code: 5, msg: fmt.Sprintf("%d of %d jobs failed (scribeq jobs --state failed)", n, p.Total)}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Println()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &exitError{code: 6, msg: fmt.Sprintf("watch: not finished after %s", c.Timeout)}
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// progressLine is one line of `watch`: counts by state, the rate since the
// first job was queued, and the ETA at that rate.
func progressLine(p *query.Progress, now time.Time) string {
	var b strings.Builder
	pct := 0.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	fmt.Fprintf(&b, "%d/%d done (%.0f%%)", p.Done, p.Total, pct)
	for _, s := range query.States {
		if n := p.Counts[s]; n > 0 {
			fmt.Fprintf(&b, "  %s %d", s, n)
		}
	}
	if p.FirstQueued == nil || p.Done == 0 {
		return b.String()
	}
	end := now
	if p.Done == p.Total && p.LastFinished != nil {
		end = *p.LastFinished
	}
	elapsed := end.Sub(*p.FirstQueued).Seconds()
	if elapsed <= 0 {
		return b.String()
	}
	rate := float64(p.Done) / elapsed
	fmt.Fprintf(&b, "  %.1f jobs/min", rate*60)
	if p.Done < p.Total {
		// Audio seconds finish at a steadier pace than jobs of mixed length.
		var eta float64
		if p.AudioSecsDone > 0 && p.AudioSecs > p.AudioSecsDone {
			eta = (p.AudioSecs - p.AudioSecsDone) / (p.AudioSecsDone / elapsed)
		} else {
			eta = float64(p.Total-p.Done) / rate
		}
		fmt.Fprintf(&b, "  ETA %s", (time.Duration(eta) * time.Second).Round(time.Second))
	} else {
		fmt.Fprintf(&b, "  took %s", time.Duration(elapsed*float64(time.Second)).Round(time.Second))
	}
	return b.String()
}

// BatchesCmd lists batches.
type BatchesCmd struct {
	ReadDBFlags `embed:""`
	JSON        bool `name:"json" help:"Print JSON lines, one batch per line."`
}

func (c *BatchesCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Batches(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSONLines(rows)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BATCH\tNAME\tCREATED\tJOBS\tDONE\tFAILED\tAUDIO\tCOST")
	for _, r := range rows {
		done := r.Counts["completed"] + r.Counts["failed"] + r.Counts["canceled"]
		var costs []string
		for cur, v := range r.Cost {
			costs = append(costs, money(v)+" "+cur)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.BatchID, clip(r.Name, 32), r.CreatedAt.Local().Format(time.DateTime),
			r.Total, done, r.Counts["failed"], audioHours(r.AudioSecs), dashIfEmpty(strings.Join(costs, ", ")))
	}
	return tw.Flush()
}

// printJSONLines writes one JSON object per line.
func printJSONLines[T any](rows []T) error {
	enc := json.NewEncoder(os.Stdout)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// clock prints seconds as h:mm:ss (or m:ss under an hour).
func clock(secs float64) string {
	d := time.Duration(secs * float64(time.Second)).Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optFloat(v *float64, prec int) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', prec, 64)
}

func optTime(t *time.Time, layout string) string {
	if t == nil {
		return ""
	}
	return t.Local().Format(layout)
}
