package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/scribeq/scribeq/pkg/doctor"
)

// DoctorCmd checks a deployment and says what is wrong and how to fix it.
// It only reads, so it is safe against production at any time; it exits 1
// when any check fails (warnings alone exit 0).
type DoctorCmd struct {
	DBFlags    `embed:""`
	APIFlags   `embed:""`
	Replicas   int           `name:"replicas" env:"SCRIBEQ_REPLICAS" default:"1" help:"Replicas every stream and bucket should have (3 on a NATS cluster); fewer is a warning."`
	WebhookURL string        `name:"webhook-url" env:"SCRIBEQ_PUBLIC_WEBHOOK_URL" placeholder:"URL" help:"Public URL ElevenLabs posts webhooks to: checks the workspace webhook points there and that it reaches the ingress (run from outside your network to prove what ElevenLabs sees)."`
	Skip       []string      `name:"skip" env:"SCRIBEQ_DOCTOR_SKIP" sep:"," enum:"nats,postgres,elevenlabs,webhook" placeholder:"GROUP" help:"Groups of checks to leave out: nats, postgres, elevenlabs, webhook."`
	Timeout    time.Duration `name:"timeout" env:"SCRIBEQ_DOCTOR_TIMEOUT" default:"10s" help:"How long each group of checks may take."`
	JSON       bool          `name:"json" env:"SCRIBEQ_DOCTOR_JSON" help:"Print the results as JSON."`

	out io.Writer `kong:"-"` // stdout when nil; set by tests
}

func (c *DoctorCmd) Run(ctx context.Context, g *Globals) error {
	out := c.out
	if out == nil {
		out = os.Stdout
	}
	// A missing database URL is a finding, not a usage error: the other
	// checks still run.
	dbURL, _ := g.databaseURL(c.DatabaseURL)
	report := doctor.Run(ctx, doctor.Config{
		NatsURL:     g.natsURL(),
		Replicas:    c.Replicas,
		DatabaseURL: dbURL,
		APIKey:      c.APIKey,
		BaseURL:     c.BaseURL,
		WebhookID:   c.WebhookID,
		WebhookURL:  c.WebhookURL,
		Skip:        c.Skip,
		Timeout:     c.Timeout,
	})
	var err error
	if c.JSON {
		err = report.WriteJSON(out)
	} else {
		err = report.WriteText(out)
	}
	if err != nil {
		return fmt.Errorf("doctor: print report: %w", err)
	}
	if report.Failed() {
		return &exitError{code: 1, msg: "doctor: some checks failed (see above)"}
	}
	return nil
}
