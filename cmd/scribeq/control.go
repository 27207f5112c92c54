package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/scribeq/scribeq/pkg/control"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// RetryCmd starts a new attempt of failed jobs.
type RetryCmd struct {
	DBFlags    `embed:""`
	QueueFlags `embed:""`
	IDs        []string `arg:"" optional:"" name:"job" help:"Job ids to retry."`
	AllFailed  bool     `name:"all-failed" help:"Retry every failed job (of --batch, if given)."`
	Batch      string   `name:"batch" placeholder:"ID|NAME" help:"With --all-failed: only this batch (its id or name)."`
}

func (c *RetryCmd) Run(ctx context.Context, g *Globals) error {
	if len(c.IDs) == 0 && !c.AllFailed {
		return errors.New("retry: name job ids, or use --all-failed")
	}
	ctl, closeAll, err := openControl(ctx, g, c.DBFlags, c.QueueFlags)
	if err != nil {
		return err
	}
	defer closeAll()
	out, err := ctl.Retry(ctx, c.IDs, c.Batch)
	if err != nil {
		return err
	}
	return report("retried", out)
}

// CancelCmd stops waiting for jobs.
type CancelCmd struct {
	DBFlags          `embed:""`
	QueueFlags       `embed:""`
	APIFlags         `embed:""`
	IDs              []string `arg:"" name:"job" help:"Job ids to cancel."`
	Reason           string   `name:"reason" default:"canceled by operator" help:"Why, for the job's history."`
	DeleteTranscript bool     `name:"delete-transcript" help:"Also delete the transcript at ElevenLabs (needs the API key)."`
}

func (c *CancelCmd) Run(ctx context.Context, g *Globals) error {
	ctl, closeAll, err := openControl(ctx, g, c.DBFlags, c.QueueFlags)
	if err != nil {
		return err
	}
	defer closeAll()
	var deleter control.Deleter
	if c.DeleteTranscript {
		if c.APIKey == "" {
			return errors.New("cancel --delete-transcript: ELEVENLABS_API_KEY is required")
		}
		api, err := elevenlabs.New(elevenlabs.Config{BaseURL: c.BaseURL, APIKey: c.APIKey})
		if err != nil {
			return err
		}
		deleter = api
	}
	out, err := ctl.Cancel(ctx, c.IDs, c.Reason, deleter)
	if err != nil {
		return err
	}
	return report("canceled", out)
}

func openControl(ctx context.Context, g *Globals, db DBFlags, qf QueueFlags) (*control.Control, func(), error) {
	qdb, err := openQuery(ctx, g, db.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	q, err := openQueue(ctx, g, qf, "scribeq-control", g.logger())
	if err != nil {
		qdb.Close()
		return nil, nil, err
	}
	return control.New(qdb, q, "operator"), func() { q.Close(); qdb.Close() }, nil
}

func report(verb string, out []control.Outcome) error {
	bad := 0
	for _, o := range out {
		switch {
		case o.Done && o.Reason == "":
			fmt.Printf("%s %s\n", verb, o.JobID)
		case o.Done:
			fmt.Printf("%s %s (%s)\n", verb, o.JobID, o.Reason)
		default:
			bad++
			fmt.Printf("not %s %s: %s\n", verb, o.JobID, o.Reason)
		}
	}
	if len(out) == 0 {
		fmt.Println("no jobs matched")
	}
	if bad > 0 {
		return &exitError{code: 3, msg: fmt.Sprintf("%d jobs not %s", bad, verb)}
	}
	return nil
}
