package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/natstest"
)

// TestHelp builds the binary and checks that every command explains itself
// and names the environment variables behind its flags.
func TestHelp(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "scribeq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))

	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"dev", "submit", "status", "show", "submitter", "ingress", "sink", "emulator", "migrate", "doctor", "web", "demo"}},
		{[]string{"submit"}, []string{"--diarize", "--keyterm", "--metadata", "--force", "SCRIBEQ_NATS_URL"}},
		{[]string{"submitter"}, []string{"ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "SCRIBEQ_CONCURRENCY"}},
		{[]string{"ingress"}, []string{"SCRIBEQ_WEBHOOK_SECRETS", "SCRIBEQ_MAX_BODY_BYTES"}},
		{[]string{"sink"}, []string{"DATABASE_URL", "--no-migrate"}},
		{[]string{"dev"}, []string{"DATABASE_URL", "ELEVENLABS_API_KEY", "--nats-port"}},
		{[]string{"emulator"}, []string{"--webhook-url", "--delay"}},
		{[]string{"migrate"}, []string{"up", "down", "status"}},
		{[]string{"web"}, []string{"SCRIBEQ_WEB_TOKEN", "--write", "--insecure-no-auth"}},
		{[]string{"doctor"}, []string{"--webhook-url", "--json", "SCRIBEQ_PUBLIC_WEBHOOK_URL", "ELEVENLABS_API_KEY"}},
		{[]string{"status"}, []string{"--json", "--batch"}},
		{[]string{"show"}, []string{"--json"}},
		{[]string{"submit"}, []string{"--dry-run", "--max-cost", "--include", "SCRIBEQ_PRICE_PER_HOUR", "--max-file-size"}},
		{[]string{"jobs"}, []string{"--state", "--since", "--metadata", "--language", "--sort", "--after", "--csv"}},
		{[]string{"search"}, []string{"--batch", "--limit", "--json"}},
		{[]string{"export"}, []string{"--format", "--out", "--max-cue-secs", "--speakers", "--additional"}},
		{[]string{"watch"}, []string{"--batch", "--interval"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"Help"}, tt.args...), ""), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(bin, append(tt.args, "--help")...).CombinedOutput()
			require.NoError(t, err, string(out))
			for _, w := range tt.want {
				require.Contains(t, string(out), w)
			}
		})
	}
}

// TestBadInput: errors name what is wrong and exit non-zero.
func TestBadInput(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "scribeq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, "submit", "--model", "whisper", "x.wav")
	cmd.Env = append(os.Environ(), "SCRIBEQ_DATA_DIR="+t.TempDir())
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "--model")

	cmd = exec.Command(bin, "status")
	cmd.Env = append(os.Environ(), "SCRIBEQ_DATA_DIR="+t.TempDir(), "DATABASE_URL=")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "DATABASE_URL")
}

// A worker stopped while it is still connecting exits 0; a query command
// stopped the same way has not done its job and says so.
func TestStopDuringStartIsClean(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	url := natstest.Server(t).ClientURL()
	require.Equal(t, 0, run(ctx, []string{"--data-dir", t.TempDir(), "submitter", "--nats-url", url, "--api-key", "k"}))
	require.NotEqual(t, 0, run(ctx, []string{"--data-dir", t.TempDir(), "status", "--database-url", "postgres://127.0.0.1:1/x"}))
}

func TestJSONLogsWriteDurationsAsFlagsTakeThem(t *testing.T) {
	var buf bytes.Buffer
	(&Globals{LogFormat: "json", LogLevel: "info"}).loggerTo(&buf).Info("running", "interval", time.Minute)
	require.Contains(t, buf.String(), `"interval":"1m0s"`)
}
