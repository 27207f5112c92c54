package main

import (
	"context"
	"errors"
	"fmt"
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
}

// EmulatorCmd runs the emulator.
type EmulatorCmd struct {
	EmulatorFlags  `embed:""`
	Addr           string   `name:"addr" env:"SCRIBEQ_EMULATOR_ADDR" default:":8790" help:"Address to listen on."`
	APIKeys        []string `name:"accept-keys" env:"SCRIBEQ_EMULATOR_API_KEYS" sep:"," help:"xi-api-key values accepted (default: any non-empty key)."`
	WebhookSecrets []string `name:"webhook-secrets" env:"SCRIBEQ_WEBHOOK_SECRETS" sep:"," hidden:""`
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
		APIKeys: c.APIKeys, WebhookURL: c.WebhookURL, WebhookSecret: secret, WebhookDelay: c.Delay, Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", c.Addr, err)
	}
	log.Info("emulator listening", "addr", ln.Addr().String(), "webhook_url", c.WebhookURL)
	err = serve(ctx, &http.Server{Handler: em.Handler(), ReadHeaderTimeout: 10 * time.Second}, ln, log)
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(err, em.Close(closeCtx))
}
