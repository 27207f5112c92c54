// Command scribeq is a queue-backed batch transcription pipeline: submit
// audio, let the workers send it to ElevenLabs and collect the webhooks, and
// query the transcripts in Postgres. `scribeq --help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("scribeq"),
		kong.Description("Batch transcription with ElevenLabs Speech-to-Text, through NATS JetStream into Postgres."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version},
		kong.BindTo(ctx, (*context.Context)(nil)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scribeq:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		parser.FatalIfErrorf(err)
	}
	if err := kctx.Run(&cli.Globals); err != nil {
		// A worker told to stop while it was still starting has nothing
		// left undone: that is a clean stop, not a failure to restart.
		if ctx.Err() != nil && errors.Is(err, context.Canceled) && workers[kctx.Command()] {
			return 0
		}
		fmt.Fprintln(os.Stderr, "scribeq:", err)
		var code exitCoder
		if errors.As(err, &code) {
			return code.ExitCode()
		}
		return 1
	}
	return 0
}

// workers are the long-running commands, which a signal is meant to stop.
var workers = map[string]bool{"dev": true, "submitter": true, "ingress": true, "sink": true, "reconciler": true, "emulator": true, "web": true}

type exitCoder interface{ ExitCode() int }

// exitError carries a specific exit code (e.g. 3: some items were skipped).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }
