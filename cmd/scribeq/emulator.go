package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/scribeq/scribeq/pkg/emulator"
)

// EmulatorFlags configure the local ElevenLabs stand-in.
type EmulatorFlags struct {
	WebhookURL    string        `name:"webhook-url" env:"SCRIBEQ_EMULATOR_WEBHOOK_URL" default:"http://127.0.0.1:8780/webhooks/elevenlabs" help:"Where the emulator POSTs webhooks."`
	WebhookSecret string        `name:"webhook-secret" env:"SCRIBEQ_EMULATOR_WEBHOOK_SECRET" placeholder:"SECRET" help:"Secret the emulator signs webhooks with (default: the first of SCRIBEQ_WEBHOOK_SECRETS)."`
	Delay         time.Duration `name:"delay" env:"SCRIBEQ_EMULATOR_DELAY" default:"200ms" help:"Processing delay before a webhook is sent."`
	// SecondsPerAudioSecond and MaxConcurrent make the emulator as slow
	// and as tight as a real plan.
	SecondsPerAudioSecond float64 `name:"seconds-per-audio-second" env:"SCRIBEQ_EMULATOR_SECONDS_PER_AUDIO_SECOND" default:"0" help:"Processing time added per second of audio (0.3 is close to the real API)."`
	MaxConcurrent         int     `name:"max-concurrent" env:"SCRIBEQ_EMULATOR_MAX_CONCURRENT" default:"0" help:"The plan's concurrency limit in slots, counted as ElevenLabs does (0: none); calls above it get 429 concurrent_limit_exceeded."`
}

// EmulatorFaultFlags inject failures; rates are probabilities 0..1 and all
// default to none. PUT /emulator/faults changes them while it runs.
type EmulatorFaultFlags struct {
	Seed uint64 `name:"seed" env:"SCRIBEQ_EMULATOR_SEED" default:"0" help:"Seed of the fault draws, to repeat a run (0: random, logged)."`

	Fault400    float64         `name:"fault-400" env:"SCRIBEQ_EMULATOR_FAULT_400" default:"0" help:"Share of convert calls answered 400."`
	Fault401    float64         `name:"fault-401" env:"SCRIBEQ_EMULATOR_FAULT_401" default:"0" help:"Share of convert calls answered 401 invalid_api_key."`
	Fault403    float64         `name:"fault-403" env:"SCRIBEQ_EMULATOR_FAULT_403" default:"0" help:"Share of convert calls answered 403."`
	Fault408    float64         `name:"fault-408" env:"SCRIBEQ_EMULATOR_FAULT_408" default:"0" help:"Share of convert calls answered 408."`
	Fault422    float64         `name:"fault-422" env:"SCRIBEQ_EMULATOR_FAULT_422" default:"0" help:"Share of convert calls answered 422 invalid_parameters."`
	Fault500    float64         `name:"fault-500" env:"SCRIBEQ_EMULATOR_FAULT_500" default:"0" help:"Share of convert calls answered 500."`
	Fault502    float64         `name:"fault-502" env:"SCRIBEQ_EMULATOR_FAULT_502" default:"0" help:"Share of convert calls answered 502 (an HTML page, as from a proxy)."`
	Fault503    float64         `name:"fault-503" env:"SCRIBEQ_EMULATOR_FAULT_503" default:"0" help:"Share of convert calls answered 503 with Retry-After."`
	Fault504    float64         `name:"fault-504" env:"SCRIBEQ_EMULATOR_FAULT_504" default:"0" help:"Share of convert calls answered 504 (an HTML page)."`
	FaultStatus map[int]float64 `name:"fault-status" env:"SCRIBEQ_EMULATOR_FAULT_STATUS" placeholder:"STATUS=RATE;..." help:"Any other statuses and their shares, e.g. '409=0.01;507=0.01'."`
	Concurrent  float64         `name:"fault-429-concurrent" env:"SCRIBEQ_EMULATOR_FAULT_429_CONCURRENT" default:"0" help:"Share of convert calls answered 429 too_many_concurrent_requests (headers say the plan is full)."`
	SystemBusy  float64         `name:"fault-429-busy" env:"SCRIBEQ_EMULATOR_FAULT_429_BUSY" default:"0" help:"Share of convert calls answered 429 system_busy with Retry-After / retry-after-ms."`
	RetryAfter  time.Duration   `name:"retry-after" env:"SCRIBEQ_EMULATOR_RETRY_AFTER" default:"1s" help:"Wait asked for by injected 429 system_busy and 503 answers."`
	Reset       float64         `name:"reset-after-accept" env:"SCRIBEQ_EMULATOR_RESET_AFTER_ACCEPT" default:"0" help:"Share of accepted calls whose connection is reset instead of answered (billed, answer lost)."`
	Stall       float64         `name:"stall" env:"SCRIBEQ_EMULATOR_STALL" default:"0" help:"Share of accepted calls whose answer is held back for --stall-for."`
	StallFor    time.Duration   `name:"stall-for" env:"SCRIBEQ_EMULATOR_STALL_FOR" default:"30s" help:"How long a stalled answer is held back."`
	First       float64         `name:"webhook-first" env:"SCRIBEQ_EMULATOR_WEBHOOK_FIRST" default:"0" help:"Share of webhook jobs whose webhook is delivered (and acknowledged) before the convert answer."`
	Drop        float64         `name:"drop-webhooks" env:"SCRIBEQ_EMULATOR_DROP_WEBHOOKS" default:"0" help:"Share of webhooks never sent (the transcript stays retrievable by GET)."`
	Duplicate   float64         `name:"duplicate-webhooks" env:"SCRIBEQ_EMULATOR_DUPLICATE_WEBHOOKS" default:"0" help:"Share of webhooks sent twice."`
	DupGap      time.Duration   `name:"duplicate-gap" env:"SCRIBEQ_EMULATOR_DUPLICATE_GAP" default:"0s" help:"Time between a webhook and its duplicate (0: both at once)."`
	Late        float64         `name:"late-webhooks" env:"SCRIBEQ_EMULATOR_LATE_WEBHOOKS" default:"0" help:"Share of webhooks sent late, after a delay between --late-min and --late-max."`
	LateMin     time.Duration   `name:"late-min" env:"SCRIBEQ_EMULATOR_LATE_MIN" default:"5s" help:"Shortest delay of a late webhook."`
	LateMax     time.Duration   `name:"late-max" env:"SCRIBEQ_EMULATOR_LATE_MAX" default:"30s" help:"Longest delay of a late webhook."`
	Reorder     float64         `name:"reorder-webhooks" env:"SCRIBEQ_EMULATOR_REORDER_WEBHOOKS" default:"0" help:"Share of webhooks delayed by a random jitter up to --reorder-jitter, so later jobs can arrive first."`
	Jitter      time.Duration   `name:"reorder-jitter" env:"SCRIBEQ_EMULATOR_REORDER_JITTER" default:"1s" help:"Largest jitter of a reordered webhook."`
	MetaString  float64         `name:"metadata-as-string" env:"SCRIBEQ_EMULATOR_METADATA_AS_STRING" default:"0" help:"Share of webhooks whose webhook_metadata is a JSON string instead of an object."`
	Lost        float64         `name:"lost-transcripts" env:"SCRIBEQ_EMULATOR_LOST_TRANSCRIPTS" default:"0" help:"Share of finished transcripts that GET answers 404 for, for good (lost at ElevenLabs)."`
	GetErrors   float64         `name:"transcript-errors" env:"SCRIBEQ_EMULATOR_TRANSCRIPT_ERRORS" default:"0" help:"Share of GET transcript calls answered with a 5xx."`
}

// faults is the emulator.Faults the flags describe.
func (f *EmulatorFaultFlags) faults() emulator.Faults {
	status := map[int]float64{}
	maps.Copy(status, f.FaultStatus)
	for st, v := range map[int]float64{
		400: f.Fault400, 401: f.Fault401, 403: f.Fault403, 408: f.Fault408, 422: f.Fault422,
		500: f.Fault500, 502: f.Fault502, 503: f.Fault503, 504: f.Fault504,
	} {
		if v != 0 {
			status[st] = v
		}
	}
	for st, v := range status {
		if v == 0 {
			delete(status, st)
		}
	}
	if len(status) == 0 {
		status = nil
	}
	return emulator.Faults{
		Status: status, TooManyConcurrent: f.Concurrent, SystemBusy: f.SystemBusy, RetryAfter: f.RetryAfter,
		ResetAfterAccept: f.Reset, Stall: f.Stall, StallFor: f.StallFor, WebhookFirst: f.First,
		DropWebhooks: f.Drop, DuplicateWebhooks: f.Duplicate, DuplicateGap: f.DupGap,
		LateWebhooks: f.Late, LateMin: f.LateMin, LateMax: f.LateMax,
		ReorderWebhooks: f.Reorder, ReorderJitter: f.Jitter, MetadataAsString: f.MetaString,
		LostTranscripts: f.Lost, TranscriptErrors: f.GetErrors,
	}
}

// EmulatorCmd runs the emulator.
type EmulatorCmd struct {
	EmulatorFlags      `embed:""`
	EmulatorFaultFlags `embed:"" group:"Faults"`
	Addr               string   `name:"addr" env:"SCRIBEQ_EMULATOR_ADDR" default:":8790" help:"Address to listen on."`
	APIKeys            []string `name:"accept-keys" env:"SCRIBEQ_EMULATOR_API_KEYS" sep:"," help:"xi-api-key values accepted (default: any non-empty key)."`
	WebhookSecrets     []string `name:"webhook-secrets" env:"SCRIBEQ_WEBHOOK_SECRETS" sep:"," hidden:""`
}

func (c *EmulatorCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger().With("process", "emulator")
	secret := c.WebhookSecret
	if secret == "" {
		if s := splitSecrets(c.WebhookSecrets); len(s) > 0 {
			secret = s[0]
		}
	}
	if secret == "" {
		return errors.New("emulator: a webhook secret is required (--webhook-secret or SCRIBEQ_WEBHOOK_SECRETS)")
	}
	em, err := emulator.New(emulator.Config{
		APIKeys: c.APIKeys, WebhookURL: c.WebhookURL, WebhookSecret: secret, WebhookDelay: c.Delay,
		SecondsPerAudioSecond: c.SecondsPerAudioSecond, MaxConcurrent: c.MaxConcurrent,
		Faults: c.faults(), Seed: c.Seed, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", c.Addr, err)
	}
	log.Info("emulator listening", "addr", ln.Addr().String(), "webhook_url", c.WebhookURL,
		"max_concurrent", c.MaxConcurrent, "seed", em.Stats().Seed)
	err = serve(ctx, &http.Server{Handler: em.Handler(), ReadHeaderTimeout: 10 * time.Second}, ln, log)
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(err, em.Close(closeCtx))
}
