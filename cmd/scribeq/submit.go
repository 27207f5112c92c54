package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/query"
)

// SubmitCmd queues audio.
type SubmitCmd struct {
	QueueFlags `embed:""`
	DBFlags    `embed:""`

	Sources        []string          `arg:"" name:"source" help:"Files, folders (searched recursively for audio and video) and https URLs (sent as source_url; nothing is downloaded)."`
	Model          string            `name:"model" default:"scribe_v2" help:"ElevenLabs model: scribe_v2 or scribe_v1."`
	Language       string            `name:"language" help:"Language code (ISO-639-1 or -3); empty means detect."`
	Diarize        bool              `name:"diarize" help:"Tell speakers apart."`
	NumSpeakers    int               `name:"num-speakers" help:"Most speakers to expect (1-32; needs --diarize to matter)."`
	Timestamps     string            `name:"timestamps" enum:"word,character,none" default:"word" help:"Timestamp granularity: word, character or none."`
	TagAudioEvents *bool             `name:"tag-audio-events" negatable:"" help:"Tag events such as (laughter); the API's default is on."`
	Keyterms       []string          `name:"keyterm" help:"A term to bias recognition towards (repeatable; scribe_v2 only; costs more)."`
	Metadata       map[string]string `name:"metadata" mapsep:"," help:"key=value stored with each job (repeatable)."`
	Batch          string            `name:"batch" help:"Name of this batch (default: a timestamp)."`
	Force          bool              `name:"force" help:"Queue again what was already submitted with the same options."`
	Wait           bool              `name:"wait" help:"Wait until every queued job is completed or failed (needs the database)."`
	Timeout        time.Duration     `name:"timeout" default:"30m" help:"With --wait: how long to wait."`
}

func (c *SubmitCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "submit")
	opts := event.Options{
		Model: c.Model, Language: c.Language, Diarize: c.Diarize, NumSpeakers: c.NumSpeakers,
		Timestamps: c.Timestamps, TagAudioEvents: c.TagAudioEvents, Keyterms: c.Keyterms,
	}
	if err := intake.Validate(&opts); err != nil {
		return err
	}
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-submit", log)
	if err != nil {
		return err
	}
	defer q.Close()
	in := intake.New(q, log)
	results, err := in.Submit(ctx, intake.Request{
		Sources: c.Sources, Options: opts, Metadata: c.Metadata, Batch: c.Batch, Force: c.Force,
	}, func(r intake.Result) {
		line := fmt.Sprintf("%-17s %s", r.Status, r.Source)
		if r.JobID != "" {
			line += "  job " + r.JobID
		}
		if r.Reason != "" {
			line += "  (" + r.Reason + ")"
		}
		fmt.Println(line)
	})
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
	fmt.Printf("%d queued (%.1f MB), %d already submitted, %d skipped, %d errors\n",
		counts[intake.Queued], float64(bytes)/1e6, counts[intake.Duplicate], counts[intake.Skipped], counts[intake.Failed])
	if c.Wait && len(ids) > 0 {
		if err := c.wait(ctx, g, ids); err != nil {
			return err
		}
	}
	if counts[intake.Failed] > 0 || counts[intake.Skipped] > 0 {
		return &exitError{code: 3, msg: "some sources were not queued (see the lines above)"}
	}
	return nil
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
	DBFlags `embed:""`
	JSON    bool `name:"json" help:"Print a JSON object of counts by state."`
}

func (c *StatusCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	counts, err := db.Status(ctx)
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
	DBFlags `embed:""`
	Key     string `arg:"" name:"job" help:"A job id, a request id, or the path or URL it was submitted as."`
	JSON    bool   `name:"json" help:"Print JSON (with the words and their timings)."`
}

func (c *ShowCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	key := c.Key
	if _, err := os.Stat(key); err == nil && !strings.Contains(key, "://") {
		if abs, err := absPath(key); err == nil {
			key = abs
		}
	}
	j, err := db.Show(ctx, key, c.JSON)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(j)
	}
	printJob(os.Stdout, j)
	return nil
}

func openQuery(ctx context.Context, g *Globals, flag string) (*query.DB, error) {
	url, err := g.databaseURL(flag)
	if err != nil {
		return nil, err
	}
	return query.Open(ctx, url)
}
