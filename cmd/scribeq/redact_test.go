package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// The secrets the binary is given through its environment, as in
// production. Any 8 characters of them in its output is a leak.
const (
	leakKey        = "sk_Hn4Vq8Tz2Wb6Kd1Rm9Xe"
	leakSecret     = "whsec_Ju7Lc3Pa9Fy5Gs2Nq8"
	leakOldSecret  = "whsec_Dk6Ex1Mw4Tb8Hr3Zv7"
	leakEmuSecret  = "whsec_Cp2Wn9Ks5Ya3Le7Qh1"
	leakAcceptKeys = "sk_Rf8Bm3Xt6Gz1Nw4Pj9"
)

var leakSecrets = []string{leakKey, leakSecret, leakOldSecret, leakEmuSecret, leakAcceptKeys}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scribeq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// secretEnv is the environment of a deployment, secrets included.
func secretEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	return append(append(os.Environ(), extra...),
		"ELEVENLABS_API_KEY="+leakKey,
		"SCRIBEQ_WEBHOOK_SECRETS="+leakSecret+","+leakOldSecret,
		"SCRIBEQ_EMULATOR_WEBHOOK_SECRET="+leakEmuSecret,
		"SCRIBEQ_EMULATOR_API_KEYS="+leakAcceptKeys,
		"SCRIBEQ_DATA_DIR="+t.TempDir(),
		"SCRIBEQ_LOG_FORMAT=json",
	)
}

// TestSecretsNotInHelpOrUsageErrors: kong shows which variable sets a flag,
// never its value, in help and in the usage it prints with a parse error,
// whether the secret came from the environment or the command line.
func TestSecretsNotInHelpOrUsageErrors(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	var out strings.Builder
	run := func(wantErr bool, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = secretEnv(t)
		b, err := cmd.CombinedOutput()
		if wantErr {
			require.Error(t, err, "%v: %s", args, b)
		} else {
			require.NoError(t, err, "%v: %s", args, b)
		}
		out.Write(b)
	}
	run(false, "--help")
	for _, c := range []string{"submitter", "ingress", "reconciler", "dev", "emulator", "cancel", "sink", "web", "doctor"} {
		run(false, c, "--help")
	}
	run(true, "submitter", "--max-attempts=abc")
	run(true, "ingress", "--bogus")
	run(true, "ingress", "--rate-limit=fast")
	run(true, "ingress", "--log-level=loud")
	run(true, "submitter", "unexpected-argument")
	run(true, "emulator", "--fault-401=x")
	run(true, "submitter", "--api-key="+leakKey, "--concurrency=many")
	run(true, "ingress", "--webhook-secrets="+leakSecret, "--max-body-bytes=big")
	// Failures after parsing, before anything is reached.
	run(true, "submitter", "--base-url=ftp://api.example.org")
	run(true, "reconciler", "--base-url=not a url", "--database-url=postgres://127.0.0.1:1/x")
	run(true, "ingress", "--tls-cert=/nonexistent/tls.crt", "--tls-key=/nonexistent/tls.key")
	run(true, "ingress", "--tls-domain=*.example.org")

	text := out.String()
	require.Contains(t, text, "ELEVENLABS_API_KEY", "help names the variables")
	require.Contains(t, text, "SCRIBEQ_WEBHOOK_SECRETS")
	require.Contains(t, text, "--max-attempts: expected a valid 64 bit int", "the parse errors were printed")
	require.Contains(t, text, "/nonexistent/tls.crt")
	logtest.RequireAbsent(t, "help and usage errors", text, leakSecrets...)
}

// proc is the built binary running in the background; its output is kept.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
	// done is closed when the process has exited and its output is read.
	done chan struct{}
	err  error
}

func startBinary(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.Write(sc.Bytes())
			p.out.WriteByte('\n')
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// line waits for a JSON log line with msg and returns it.
func (p *proc) line(msg string) map[string]any {
	p.t.Helper()
	var found map[string]any
	require.Eventually(p.t, func() bool {
		for l := range strings.SplitSeq(p.output(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
				found = m
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "no %q line in:\n%s", msg, p.output())
	return found
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("did not stop:\n%s", p.output())
	}
	require.NoError(p.t, p.err, p.output())
}

// TestWorkersDoNotLogSecrets runs the real ingress and submitter with the
// secrets in their environment and makes them fail: forged, stale and
// rotated-out webhooks, a misconfigured ingress, and an API key ElevenLabs
// (the emulator) rejects. Nothing they print holds a secret.
func TestWorkersDoNotLogSecrets(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	ns := natstest.Server(t)
	env := secretEnv(t, "SCRIBEQ_NATS_URL="+ns.ClientURL())
	var seen strings.Builder

	// A misconfigured ingress stops with an error.
	bad := startBinary(t, bin, env, "ingress", "--addr=127.0.0.1:0", "--trusted-proxies=10.0.0.0/99")
	<-bad.done
	require.Error(t, bad.err)
	require.Contains(t, bad.output(), "TrustedProxies")
	seen.WriteString(bad.output())

	// The ingress, fed good and bad webhooks.
	ing := startBinary(t, bin, env, "ingress", "--addr=127.0.0.1:0", "--rate-limit=-1", "--log-level=debug")
	listening := ing.line("ingress listening")
	require.EqualValues(t, 2, listening["webhook_secrets"], "how many secrets, to check a rotation")
	addr := listening["addr"].(string)
	url := "http://" + addr + "/webhooks/elevenlabs"
	payload := []byte(`{"type":"speech_to_text_transcription","event_timestamp":1700000000,"data":{"request_id":"req-bin",` +
		`"webhook_metadata":{"job_id":"job-bin"},"transcription":{"language_code":"en","text":"hi","words":[],"transcription_id":"tr-bin"}}}`)
	for _, tc := range []struct {
		sig  string
		want int
	}{
		{elevenlabs.Sign(leakSecret, time.Now(), payload), http.StatusOK},
		{elevenlabs.Sign(leakOldSecret, time.Now(), payload), http.StatusOK},
		{elevenlabs.Sign("whsec_forged", time.Now(), payload), http.StatusUnauthorized},
		{elevenlabs.Sign(leakSecret, time.Now().Add(-time.Hour), payload), http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
		require.NoError(t, err)
		req.Header.Set(elevenlabs.SignatureHeader, tc.sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, string(b))
		seen.Write(b)
	}
	stored := ing.line("webhook stored")
	require.Equal(t, "job-bin", stored["job_id"])
	require.Equal(t, "req-bin", stored["request_id"])
	require.Equal(t, "tr-bin", stored["transcription_id"])
	ing.stop()

	// After the rotation, without the old secret.
	rotated := startBinary(t, bin, append(env, "SCRIBEQ_WEBHOOK_SECRETS="+leakSecret), "ingress", "--addr=127.0.0.1:0")
	listening = rotated.line("ingress listening")
	require.EqualValues(t, 1, listening["webhook_secrets"])
	url = "http://" + listening["addr"].(string) + "/webhooks/elevenlabs"
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(leakOldSecret, time.Now(), payload))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the removed secret no longer verifies")
	rotated.stop()

	// The submitter against an API that refuses its key.
	emuLogs := logtest.New()
	em, err := emulator.New(emulator.Config{APIKeys: []string{"sk_some_other_key"}, Logger: emuLogs.Logger()})
	require.NoError(t, err)
	emu := httptest.NewServer(em.Handler())
	t.Cleanup(emu.Close)
	sub := startBinary(t, bin, env, "submitter", "--base-url="+emu.URL, "--log-format=text")
	q := openTestQueue(t, ns.ClientURL())
	addJob(t, q, "job-key")
	require.Eventually(t, func() bool { return strings.Contains(sub.output(), "ElevenLabs rejected the API key") },
		60*time.Second, 20*time.Millisecond, sub.output())
	require.Contains(t, sub.output(), "job_id=job-key")
	sub.stop()

	seen.WriteString(ing.output())
	seen.WriteString(rotated.output())
	seen.WriteString(sub.output())
	require.Contains(t, seen.String(), "webhook rejected: signature")
	logtest.RequireAbsent(t, "worker output", seen.String(), leakSecrets...)
	logtest.RequireAbsent(t, "emulator logs", emuLogs.String(), leakSecrets...)
}

func openTestQueue(t *testing.T, url string) *queue.Queue {
	t.Helper()
	nc, err := queue.Connect(url, t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	return q
}

func addJob(t *testing.T, q *queue.Queue, id string) {
	t.Helper()
	samples := make([]int16, 8000)
	var wav bytes.Buffer
	require.NoError(t, audio.WriteWAV(&wav, 16000, samples, ""))
	ctx := context.Background()
	_, err := q.Audio.Put(ctx, jetstream.ObjectMeta{Name: "obj-" + id}, bytes.NewReader(wav.Bytes()))
	require.NoError(t, err)
	_, err = q.PublishJob(ctx, &event.Job{V: 1, JobID: id, Source: event.Source{Object: "obj-" + id, Name: id + ".wav", Size: int64(wav.Len())},
		Options: event.Options{Model: "scribe_v2"}})
	require.NoError(t, err)
}
