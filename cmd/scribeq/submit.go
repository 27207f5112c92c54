package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/query"
)

// SubmitCmd queues audio.
type SubmitCmd struct {
	QueueFlags `embed:""`
	DBFlags    `embed:""`

	Sources         []string          `arg:"" name:"source" help:"What to transcribe, mixed freely: files; folders (recursive); globs such as 'calls/**/*.mp3'; - for a list of paths or URLs on stdin; manifests (.csv, .jsonl) with per-row options and metadata; archives (.zip, .tar, .tar.gz, .tgz), read without unpacking; https URLs (sent as source_url; nothing is downloaded)."`
	Include         []string          `name:"include" sep:"none" placeholder:"GLOB" help:"Only files matching this glob, in folders, glob matches and archives (repeatable; '*.mp3', '2024/**/*.wav')."`
	Exclude         []string          `name:"exclude" sep:"none" placeholder:"GLOB" help:"Leave out files matching this glob (repeatable)."`
	Model           string            `name:"model" default:"scribe_v2" help:"ElevenLabs model: scribe_v2 or scribe_v1."`
	Language        string            `name:"language" help:"Language code (ISO-639-1 or -3); empty means detect."`
	Diarize         bool              `name:"diarize" help:"Tell speakers apart."`
	NumSpeakers     int               `name:"num-speakers" help:"Most speakers to expect (1-32; needs --diarize to matter)."`
	Timestamps      string            `name:"timestamps" enum:"word,character,none" default:"word" help:"Timestamp granularity: word, character or none."`
	TagAudioEvents  *bool             `name:"tag-audio-events" negatable:"" help:"Tag events such as (laughter); the API's default is on."`
	Keyterms        []string          `name:"keyterm" help:"A term to bias recognition towards (repeatable; scribe_v2 only; +20% cost)."`
	MultiChannel    bool              `name:"multichannel" help:"Transcribe each channel on its own (at most 5, 1 h); every channel is billed."`
	EntityDetection string            `name:"entity-detection" placeholder:"KIND" help:"Detect entities: all, pii, phi, pci, other, offensive_language, or one entity type (+30% cost)."`
	Metadata        map[string]string `name:"metadata" mapsep:"," help:"key=value stored with each job (repeatable)."`
	Batch           string            `name:"batch" help:"Name of this batch (default: the first source's name and today's date)."`
	Force           bool              `name:"force" help:"Queue again what was already submitted with the same options."`

	DryRun       bool          `name:"dry-run" help:"Read everything, print what would be queued and the estimated cost, queue nothing."`
	MaxCost      float64       `name:"max-cost" env:"SCRIBEQ_MAX_COST" placeholder:"AMOUNT" help:"Refuse the batch if its estimated cost is above this (0: no limit)."`
	PricePerHour float64       `name:"price-per-hour" env:"SCRIBEQ_PRICE_PER_HOUR" default:"0.40" help:"Your plan's price of one audio hour, for the estimate and the cost stored with each job."`
	Currency     string        `name:"currency" env:"SCRIBEQ_CURRENCY" default:"USD" help:"Currency of --price-per-hour."`
	MaxFileSize  string        `name:"max-file-size" env:"SCRIBEQ_MAX_FILE_SIZE" default:"3GB" help:"Largest upload ElevenLabs accepts; bigger files are skipped (e.g. 3GB, 500MiB)."`
	MaxDuration  time.Duration `name:"max-duration" env:"SCRIBEQ_MAX_DURATION" default:"10h" help:"Longest audio ElevenLabs accepts; longer files are skipped."`
	MaxDurationM time.Duration `name:"max-duration-multichannel" env:"SCRIBEQ_MAX_DURATION_MULTICHANNEL" default:"1h" help:"Longest audio accepted with --multichannel."`
	Progress     string        `name:"progress" enum:"auto,bar,plain" default:"auto" help:"Upload progress: a bar on a terminal (auto), or plain lines every few seconds."`

	Wait    bool          `name:"wait" help:"Wait until every queued job is completed or failed (needs the database)."`
	Timeout time.Duration `name:"timeout" default:"30m" help:"With --wait: how long to wait."`
}

func (c *SubmitCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "submit")
	opts := event.Options{
		Model: c.Model, Language: c.Language, Diarize: c.Diarize, NumSpeakers: c.NumSpeakers,
		Timestamps: c.Timestamps, TagAudioEvents: c.TagAudioEvents, Keyterms: c.Keyterms,
		MultiChannel: c.MultiChannel, EntityDetection: c.EntityDetection,
	}
	if err := intake.Validate(&opts); err != nil {
		return err
	}
	maxBytes, err := humanize.ParseBytes(c.MaxFileSize)
	if err != nil {
		return fmt.Errorf("--max-file-size %q: want a size such as 3GB or 500MiB", c.MaxFileSize)
	}
	if c.PricePerHour <= 0 {
		return fmt.Errorf("--price-per-hour %v: want a price above 0", c.PricePerHour)
	}
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-submit", log)
	if err != nil {
		return err
	}
	defer q.Close()
	in, err := intake.NewWithConfig(q, intake.Config{
		Limits:  intake.Limits{MaxBytes: int64(maxBytes), MaxDuration: c.MaxDuration, MaxDurationMultichannel: c.MaxDurationM},
		Pricing: intake.Pricing{PerHour: c.PricePerHour, Currency: c.Currency},
		Logger:  log,
	})
	if err != nil {
		return err
	}

	// Read everything first: the estimate and --max-cost need the whole batch.
	scanned, lastNote := 0, time.Now()
	plan, err := in.Scan(ctx, intake.Request{
		Sources: c.Sources, Stdin: os.Stdin, Include: c.Include, Exclude: c.Exclude,
		Options: opts, Metadata: c.Metadata, Batch: c.Batch, Force: c.Force,
	}, func(r intake.Result) {
		scanned++
		switch {
		case r.Status == intake.Skipped || r.Status == intake.Failed:
			// Listed together at the end, where they are not scrolled away.
		case r.Status != intake.Ready:
			fmt.Println(resultLine(r))
		case time.Since(lastNote) > 5*time.Second:
			fmt.Fprintf(os.Stderr, "reading: %d items so far\n", scanned)
			lastNote = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	t := plan.Totals
	fmt.Printf("batch %q (%s)\n", plan.BatchName, plan.BatchID)
	if t.Items == 0 {
		fmt.Println("nothing new to queue")
		return c.exit(plan.Results)
	}
	est := fmt.Sprintf("%d to queue: %s, %s of audio, estimated cost %s %s at %.2f %s/h",
		t.Items, humanBytes(t.Bytes), audioHours(t.AudioSecs), money(t.Cost), t.Currency, t.PerHour, t.Currency)
	if t.UnknownDuration > 0 {
		est += fmt.Sprintf(" (%d items of unknown duration are not in the estimate)", t.UnknownDuration)
	}
	fmt.Println(est)
	if c.DryRun {
		fmt.Println("dry run: nothing queued")
		return c.exit(plan.Results)
	}
	if c.MaxCost > 0 && t.Cost > c.MaxCost {
		return &exitError{code: 4, msg: fmt.Sprintf("estimated cost %s %s is above --max-cost %s: nothing queued", money(t.Cost), t.Currency, money(c.MaxCost))}
	}

	bar := newProgress(c.Progress, t.Items, t.UploadBytes)
	results, err := plan.Queue(ctx, func(p intake.Progress) {
		bar.Bytes(p.Bytes)
		if p.Result != nil {
			bar.Item(resultLine(*p.Result))
		}
	})
	bar.Finish()
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	counts := map[intake.Status]int{}
	var ids []string
	var bytes int64
	for _, r := range results {
		counts[r.Status]++
		if r.Status == intake.Queued {
			ids = append(ids, r.JobID)
			bytes += r.Bytes
		}
	}
	fmt.Printf("%d queued (%s), %d already submitted, %d duplicates, %d skipped, %d errors\n",
		counts[intake.Queued], humanBytes(bytes), counts[intake.AlreadySubmitted], counts[intake.Repeated],
		counts[intake.Skipped], counts[intake.Failed])
	if len(ids) > 0 && !c.Wait {
		fmt.Printf("follow it with: scribeq watch --batch %s\n", plan.BatchID)
	}
	if c.Wait && len(ids) > 0 {
		if err := c.wait(ctx, g, ids); err != nil {
			return err
		}
	}
	return c.exit(results)
}

// money shows small amounts with enough digits to not read as zero.
func money(v float64) string {
	if v != 0 && v < 0.1 {
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// audioHours prints a duration of audio: "2.35 h", or minutes when short.
func audioHours(secs float64) string {
	if secs < 3600 {
		return fmt.Sprintf("%.1f min", secs/60)
	}
	return fmt.Sprintf("%.2f h", secs/3600)
}

// exit lists together what was named but not queued, and says by its code
// whether there was any.
func (c *SubmitCmd) exit(results []intake.Result) error {
	var skipped, failed []string
	for _, r := range results {
		switch r.Status {
		case intake.Skipped:
			skipped = append(skipped, resultLine(r))
		case intake.Failed:
			failed = append(failed, resultLine(r))
		}
	}
	if len(skipped)+len(failed) == 0 {
		return nil
	}
	fmt.Printf("\nnot queued (%d):\n", len(skipped)+len(failed))
	for _, l := range append(failed, skipped...) {
		fmt.Println("  " + l)
	}
	return &exitError{code: 3, msg: fmt.Sprintf("%d skipped and %d errors were not queued (listed above); errors can be retried by running the same submit again",
		len(skipped), len(failed))}
}

func resultLine(r intake.Result) string {
	line := fmt.Sprintf("%-17s %s", r.Status, r.Where())
	if r.JobID != "" {
		line += "  job " + r.JobID
	}
	switch {
	case r.DuplicateOf != "":
		line += "  — same audio as " + r.DuplicateOf
	case r.Reason != "":
		line += "  — " + r.Reason
	}
	return line
}

func (c *SubmitCmd) wait(ctx context.Context, g *Globals, ids []string) error {
	url, err := g.databaseURL(c.DatabaseURL)
	if err != nil {
		return err
	}
	db, err := query.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := int64(-1)
	for {
		pending, err := db.Pending(ctx, ids)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil && pending != last {
			fmt.Fprintf(os.Stderr, "waiting: %d of %d jobs not finished\n", pending, len(ids))
			last = pending
		}
		if err == nil && pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("submit --wait: %d jobs still unfinished after %s", last, c.Timeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// StatusCmd prints counts by state.
type StatusCmd struct {
	ReadDBFlags `embed:""`
	FilterFlags `embed:""`
	JSON        bool `name:"json" help:"Print a JSON object of counts by state."`
}

func (c *StatusCmd) Run(ctx context.Context, g *Globals) error {
	f, db, err := c.open(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	var counts map[string]int64
	if f.IsZero() {
		counts, err = db.Status(ctx)
	} else {
		var p *query.Progress
		if p, err = db.BatchProgress(ctx, f); p != nil {
			counts = p.Counts
		}
	}
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(counts)
	}
	var total int64
	for _, s := range query.States {
		fmt.Printf("%-10s %8d\n", s, counts[s])
		total += counts[s]
	}
	fmt.Printf("%-10s %8d\n", "total", total)
	return nil
}

// ShowCmd prints one job.
type ShowCmd struct {
	ReadDBFlags `embed:""`
	Key         string `arg:"" name:"job" help:"A job id, a request id, or the path or URL it was submitted as."`
	JSON        bool   `name:"json" help:"Print JSON (with the words and their timings)."`
}

func (c *ShowCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.readURL())
	if err != nil {
		return err
	}
	defer db.Close()
	key := c.Key
	// Paths are stored absolute; an archive entry as <archive>!<entry>.
	file, entry, inArchive := strings.Cut(key, "!")
	if _, err := os.Stat(file); err == nil && !strings.Contains(key, "://") {
		if abs, err := absPath(file); err == nil {
			key = abs
			if inArchive {
				key += "!" + entry
			}
		}
	}
	j, err := db.Show(ctx, key, true)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(j)
	}
	var row *query.JobRow
	if rows, _, err := db.Jobs(ctx, query.Filter{JobIDs: []string{j.JobID}}, query.Page{Limit: 1}); err == nil && len(rows) == 1 {
		row = &rows[0]
	}
	printJob(os.Stdout, j, row)
	return nil
}

func openQuery(ctx context.Context, g *Globals, flag string) (*query.DB, error) {
	url, err := g.databaseURL(flag)
	if err != nil {
		return nil, err
	}
	return query.Open(ctx, url)
}
