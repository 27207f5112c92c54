package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// TestDoctorCmd runs the command on a NATS server that has everything and
// on one that is not there: exit 0 with a ✓ report, exit code 1 with the
// fix. Postgres and ElevenLabs are covered by pkg/doctor's tests.
func TestDoctorCmd(t *testing.T) {
	t.Parallel()
	q := natstest.Queue(t, queue.Config{})
	_, err := q.SubmitterConsumer(t.Context())
	require.NoError(t, err)
	_, err = q.SinkConsumer(t.Context())
	require.NoError(t, err)
	g := &Globals{NatsURL: q.NC.ConnectedUrl(), DataDir: t.TempDir(), LogLevel: "error", LogFormat: "text"}

	var out bytes.Buffer
	cmd := &DoctorCmd{Skip: []string{"postgres"}, Replicas: 1, Timeout: 10 * time.Second, out: &out}
	cmd.BaseURL = "https://api.elevenlabs.io"
	require.NoError(t, cmd.Run(t.Context(), g), out.String())
	require.Contains(t, out.String(), "✓ consumer submitter")
	require.Contains(t, out.String(), "no API key")
	require.Contains(t, out.String(), "all checks passed")

	out.Reset()
	cmd.JSON = true
	require.NoError(t, cmd.Run(t.Context(), g))
	var got struct {
		OK      bool `json:"ok"`
		Results []struct {
			Group, Name, Status string
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	require.True(t, got.OK)
	require.NotEmpty(t, got.Results)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "nats://" + l.Addr().String()
	require.NoError(t, l.Close())
	out.Reset()
	cmd.JSON = false
	err = cmd.Run(t.Context(), &Globals{NatsURL: dead, DataDir: t.TempDir()})
	var code exitCoder
	require.True(t, errors.As(err, &code), "want an exit code, got %v", err)
	require.Equal(t, 1, code.ExitCode())
	require.Contains(t, out.String(), "✗ connection")
	require.Contains(t, out.String(), "fix: start NATS")
	// Without DATABASE_URL or a dev process, Postgres is a finding too.
	cmd.Skip = nil
	out.Reset()
	require.Error(t, cmd.Run(t.Context(), &Globals{NatsURL: dead, DataDir: t.TempDir()}))
	require.Contains(t, out.String(), "no database URL")
}

// TestDoctorFlags: the flags parse, with their environment variables.
func TestDoctorFlags(t *testing.T) {
	var cli struct {
		Globals
		Doctor DoctorCmd `cmd:""`
	}
	t.Setenv("SCRIBEQ_PUBLIC_WEBHOOK_URL", "https://hooks.example/webhooks/elevenlabs")
	t.Setenv("SCRIBEQ_DOCTOR_SKIP", "postgres,elevenlabs")
	parser, err := kong.New(&cli, kong.Exit(func(int) { t.Fatal("kong exited") }))
	require.NoError(t, err)
	_, err = parser.Parse([]string{"doctor", "--json", "--replicas", "3"})
	require.NoError(t, err)
	require.True(t, cli.Doctor.JSON)
	require.Equal(t, 3, cli.Doctor.Replicas)
	require.Equal(t, []string{"postgres", "elevenlabs"}, cli.Doctor.Skip)
	require.Equal(t, "https://hooks.example/webhooks/elevenlabs", cli.Doctor.WebhookURL)
	require.Equal(t, 10*time.Second, cli.Doctor.Timeout)

	_, err = parser.Parse([]string{"doctor", "--skip", "redis"})
	require.Error(t, err, "unknown groups are refused")
}
