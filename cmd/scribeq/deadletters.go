package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/scribeq/scribeq/pkg/control"
)

// DeadLettersCmd inspects and replays messages that could never be processed.
type DeadLettersCmd struct {
	List   DeadLettersListCmd   `cmd:"" default:"withargs" help:"List dead letters, newest first."`
	Show   DeadLettersShowCmd   `cmd:"" help:"Show one dead letter with its error, headers and bytes."`
	Replay DeadLettersReplayCmd `cmd:"" help:"Send dead letters back to their subject, after fixing what made them fail."`
}

// DeadLettersListCmd lists dead letters.
type DeadLettersListCmd struct {
	DBFlags `embed:""`
	All     bool `name:"all" help:"Include the ones already replayed."`
	Limit   int  `name:"limit" default:"50" help:"Most rows to print."`
	JSON    bool `name:"json" help:"Print JSON."`
}

func (c *DeadLettersListCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.DeadLetters(ctx, c.Limit, c.All)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Println("no dead letters")
		return nil
	}
	fmt.Printf("%-6s %-19s %-26s %-8s %s\n", "ID", "WHEN", "SUBJECT", "ATTEMPTS", "ERROR")
	for _, d := range rows {
		mark := ""
		if d.ReplayedAt != nil {
			mark = " (replayed)"
		}
		fmt.Printf("%-6d %-19s %-26s %-8d %s%s\n", d.ID, d.CreatedAt.Local().Format(time.DateTime), d.Subject, d.Attempts, oneLine(d.Error, 100), mark)
	}
	return nil
}

// DeadLettersShowCmd prints one dead letter.
type DeadLettersShowCmd struct {
	DBFlags `embed:""`
	ID      int64 `arg:"" help:"Dead letter id (from 'dead-letters list')."`
	JSON    bool  `name:"json" help:"Print JSON (data base64-encoded)."`
}

func (c *DeadLettersShowCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := db.DeadLetter(ctx, c.ID)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(d)
	}
	fmt.Printf("id        %d\nstream    %s\nsubject   %s\n", d.ID, d.Stream, d.Subject)
	if d.MsgID != nil {
		fmt.Printf("msg id    %s\n", *d.MsgID)
	}
	fmt.Printf("attempts  %d\nwhen      %s\nerror     %s\n", d.Attempts, d.CreatedAt.Local().Format(time.DateTime), d.Error)
	if d.ReplayedAt != nil {
		fmt.Printf("replayed  %s\n", d.ReplayedAt.Local().Format(time.DateTime))
	}
	fmt.Printf("headers   %s\ndata (%d bytes)\n", string(d.Headers), len(d.Data))
	_, err = os.Stdout.Write(append(d.Data, '\n'))
	return err
}

// DeadLettersReplayCmd sends dead letters back.
type DeadLettersReplayCmd struct {
	DBFlags    `embed:""`
	QueueFlags `embed:""`
	IDs        []int64 `arg:"" name:"id" help:"Dead letter ids to replay."`
}

func (c *DeadLettersReplayCmd) Run(ctx context.Context, g *Globals) error {
	db, err := openQuery(ctx, g, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	log := g.logger().With("process", "dead-letters")
	q, err := openQueue(ctx, g, c.QueueFlags, "scribeq-dead-letters", log)
	if err != nil {
		return err
	}
	defer q.Close()
	ctl := control.New(db, q, "dead-letters")
	for _, id := range c.IDs {
		subject, err := ctl.ReplayDeadLetter(ctx, id)
		if err != nil {
			return err
		}
		fmt.Printf("replayed %d to %s\n", id, subject)
	}
	return nil
}

func oneLine(s string, n int) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
		if len(out) >= n {
			return string(out) + "…"
		}
	}
	return string(out)
}
