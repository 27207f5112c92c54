package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"
)

// CLI is the whole command line. Every setting is a flag with an
// environment variable; `scribeq <command> --help` shows both.
type CLI struct {
	Globals

	Dev         DevCmd         `cmd:"" help:"Run everything in one process: embedded NATS, Postgres (DATABASE_URL or a throwaway local cluster), ingress, submitter, sink, and the emulator when no API key is set."`
	Submit      SubmitCmd      `cmd:"" help:"Queue audio for transcription: files, folders, globs, manifests, archives and https URLs; prints the cost first."`
	Status      StatusCmd      `cmd:"" help:"Count jobs by state."`
	Show        ShowCmd        `cmd:"" help:"Show one job: state, ids, timings, cost, history and the transcript with speakers and timestamps."`
	Jobs        JobsCmd        `cmd:"" help:"List jobs, filtered and sorted, as a table, JSON lines or CSV."`
	Search      SearchCmd      `cmd:"" help:"Full-text search across every transcript: ranked hits with the time and speaker of each."`
	Export      ExportCmd      `cmd:"" help:"Write transcripts as SRT, VTT, TXT, JSON or CSV, rendered from the stored words."`
	Watch       WatchCmd       `cmd:"" help:"Follow jobs (a batch) until all are finished; exits non-zero if any failed."`
	Batches     BatchesCmd     `cmd:"" help:"List batches with their progress, audio hours and cost."`
	Submitter   SubmitterCmd   `cmd:"" help:"Run the submitter worker: sends queued jobs to ElevenLabs."`
	Ingress     IngressCmd     `cmd:"" help:"Run the webhook ingress: verifies ElevenLabs webhooks and queues the results."`
	Sink        SinkCmd        `cmd:"" help:"Run the sink worker: writes job state and transcripts to Postgres."`
	Emulator    EmulatorCmd    `cmd:"" help:"Run a local stand-in for the ElevenLabs Speech-to-Text API that sends signed webhooks."`
	Migrate     MigrateCmd     `cmd:"" help:"Create or upgrade the Postgres schema."`
	Reconciler  ReconcilerCmd  `cmd:"" help:"Run the reconciler: recovers transcripts whose webhook never arrived and fails jobs ElevenLabs lost."`
	DeadLetters DeadLettersCmd `cmd:"" name:"dead-letters" help:"List, show and replay messages that could never be processed."`
	Web         WebCmd         `cmd:"" help:"Serve the web console: overview, jobs, transcripts with a player, search, downloads; --write adds retry, cancel and replay."`
	Doctor      DoctorCmd      `cmd:"" help:"Check NATS, Postgres, ElevenLabs and the public webhook URL; print what is wrong and how to fix it (exit 1 if anything is broken)."`
	Retry       RetryCmd       `cmd:"" help:"Start a new attempt of failed (or canceled) jobs; it calls ElevenLabs again and is counted."`
	Cancel      CancelCmd      `cmd:"" help:"Stop waiting for jobs: never send them, or forget them if sent."`
	Demo        DemoCmd        `cmd:"" help:"Run the pipeline end to end on the bundled recordings and print the results."`
	Healthcheck HealthcheckCmd `cmd:"" help:"Probe a health endpoint: exit 0 if it answers 2xx (for container healthchecks; the image has no curl)."`
	Version     VersionCmd     `cmd:"" help:"Print the version."`
}

// Globals are accepted by every command.
type Globals struct {
	NatsURL   string `name:"nats-url" env:"SCRIBEQ_NATS_URL" placeholder:"URL" help:"NATS server (default: the one 'scribeq dev' runs, else nats://127.0.0.1:4222)."`
	DataDir   string `name:"data-dir" env:"SCRIBEQ_DATA_DIR" default:".scribeq" placeholder:"DIR" help:"Where 'scribeq dev' keeps NATS and Postgres data and its connection file."`
	LogLevel  string `name:"log-level" env:"SCRIBEQ_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level: debug, info, warn, error."`
	LogFormat string `name:"log-format" env:"SCRIBEQ_LOG_FORMAT" enum:"auto,text,json" default:"auto" help:"Log format: text, json, or auto (text on a terminal)."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (VersionCmd) Run(vars kong.Vars) error {
	fmt.Println("scribeq", vars["version"])
	return nil
}

func (g *Globals) logger() *slog.Logger { return g.loggerTo(os.Stderr) }

func (g *Globals) loggerTo(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(g.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := g.LogFormat
	if format == "auto" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// JSON would write durations as integer nanoseconds; "1m0s" is what
	// the flags take and what a person reads.
	opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// devInfo is what 'scribeq dev' writes into the data folder so that other
// commands on the same machine find it without flags.
type devInfo struct {
	NatsURL     string `json:"nats_url"`
	DatabaseURL string `json:"database_url"`
	IngressURL  string `json:"ingress_url"`
	EmulatorURL string `json:"emulator_url,omitempty"`
	PID         int    `json:"pid"`
}

func (g *Globals) devInfoPath() string { return filepath.Join(g.DataDir, "dev.json") }

func (g *Globals) readDevInfo() *devInfo {
	b, err := os.ReadFile(g.devInfoPath())
	if err != nil {
		return nil
	}
	var d devInfo
	if json.Unmarshal(b, &d) != nil {
		return nil
	}
	return &d
}

func (g *Globals) natsURL() string {
	if g.NatsURL != "" {
		return g.NatsURL
	}
	if d := g.readDevInfo(); d != nil && d.NatsURL != "" {
		return d.NatsURL
	}
	return "nats://127.0.0.1:4222"
}

// databaseURL is the flag's value, else the dev process's database.
func (g *Globals) databaseURL(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := g.readDevInfo(); d != nil && d.DatabaseURL != "" {
		return d.DatabaseURL, nil
	}
	return "", errors.New("no database: set DATABASE_URL (or --database-url), or start 'scribeq dev' in this folder")
}

func splitSecrets(list []string) []string {
	var out []string
	for _, s := range list {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
