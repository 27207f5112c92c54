package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Config describes a Cluster. Zero values take the documented defaults.
type Config struct {
	// Bin are the programs to run (from Build). Required.
	Bin Binaries
	// DatabaseURL is the Postgres database the sink writes (pgtest.NewDB).
	// Required.
	DatabaseURL string
	// Dir holds logs, the NATS store and the working directory of every
	// process. Default: a t.TempDir().
	Dir string
	// Submitters is how many `scribeq submitter` processes run. Default 2.
	Submitters int
	// Concurrency is each submitter's --concurrency. Default 8.
	Concurrency int
	// MaxConcurrent is the submitters' shared --max-concurrent. Default 32:
	// high enough that the emulator's delay, not the limit, sets the pace.
	MaxConcurrent int
	// InDoubtGrace is the submitters' --in-doubt-grace. Default 30s: long
	// next to the emulator's webhook delay, so an accepted call's webhook
	// always arrives inside it, and short enough that jobs whose call never
	// reached the emulator do not hold a run for the production 15 minutes.
	InDoubtGrace time.Duration
	// EmulatorDelay is the emulator's --delay before each webhook. Default 20ms.
	EmulatorDelay time.Duration
	// LogLevel of every scribeq process. Default "info".
	LogLevel string
	// Reconciler starts `scribeq reconciler` too.
	Reconciler bool
	// Extra arguments per command, for flags the defaults do not cover
	// (emulator --fault-*, ingress spool settings, ...).
	EmulatorArgs, IngressArgs, SubmitterArgs, SinkArgs, ReconcilerArgs []string
	// Env adds NAME=value entries to every scribeq process.
	Env []string
}

func (c Config) withDefaults(t testing.TB) Config {
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	if c.Submitters <= 0 {
		c.Submitters = 2
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 32
	}
	if c.InDoubtGrace <= 0 {
		c.InDoubtGrace = 30 * time.Second
	}
	if c.EmulatorDelay <= 0 {
		c.EmulatorDelay = 20 * time.Millisecond
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return c
}

func (c Config) validate() error {
	if c.Bin.Scribeq == "" || c.Bin.NatsServer == "" {
		return errors.New("chaos: Config.Bin is required (use Build)")
	}
	if c.DatabaseURL == "" {
		return errors.New("chaos: Config.DatabaseURL is required (use pgtest.NewDB)")
	}
	return nil
}

// Test-only credentials: the emulator accepts any non-empty key.
const (
	apiKey        = "chaos-api-key"
	webhookSecret = "chaos-webhook-secret"
	webhookPath   = "/webhooks/elevenlabs"
)

var startMu sync.Mutex

// Cluster is the whole pipeline as separate OS processes on loopback.
type Cluster struct {
	Config
	NATS       *Proc
	Emulator   *Proc
	Ingress    *Proc
	Sink       *Proc
	Reconciler *Proc // nil unless Config.Reconciler
	Submitters []*Proc

	NatsURL     string
	NatsMonitor string // http://host:port of nats-server's monitoring endpoint
	EmulatorURL string
	IngressURL  string // the webhook endpoint

	nc *nats.Conn // the harness's own connection, for consumer info
	js jetstream.JetStream
}

// Start runs every process, waits until each is ready, and stops them all
// (workers first, NATS last) when t ends.
func Start(t testing.TB, ctx context.Context, cfg Config) *Cluster {
	t.Helper()
	cfg = cfg.withDefaults(t)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Config: cfg}
	// Clusters of parallel scenarios start one at a time: a port found
	// free must not be handed to another cluster before ours binds it.
	startMu.Lock()
	defer startMu.Unlock()
	ports := freePorts(t, 4)
	c.NatsURL = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	c.NatsMonitor = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.EmulatorURL = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	ingressAddr := fmt.Sprintf("127.0.0.1:%d", ports[3])
	c.IngressURL = "http://" + ingressAddr + webhookPath

	for _, d := range []string{"logs", "nats", "work"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	natsConf := filepath.Join(cfg.Dir, "nats.conf")
	// sync_interval: always, as RELIABILITY.md prescribes for every profile:
	// an acknowledged publish is on disk.
	conf := fmt.Sprintf("server_name: chaos\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n"+
		"jetstream {\n  store_dir: %q\n  sync_interval: always\n}\n",
		ports[0], ports[1], filepath.Join(cfg.Dir, "nats"))
	if err := os.WriteFile(natsConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	// Everything is stopped in reverse order of registration: NATS last.
	t.Cleanup(func() { c.stopAll(t) })

	c.NATS = c.proc("nats-server", cfg.Bin.NatsServer, []string{"-c", natsConf}, nil)
	c.mustStart(t, ctx, c.NATS)

	base := []string{
		"SCRIBEQ_NATS_URL=" + c.NatsURL,
		"SCRIBEQ_LOG_FORMAT=json",
		"SCRIBEQ_LOG_LEVEL=" + cfg.LogLevel,
		// An empty data folder: no stray dev.json may point a worker elsewhere.
		"SCRIBEQ_DATA_DIR=" + filepath.Join(cfg.Dir, "work", ".scribeq"),
		"SCRIBEQ_WEBHOOK_SECRETS=" + webhookSecret,
		"SCRIBEQ_METRICS_ADDR=127.0.0.1:0", // each worker picks its own free port for /metrics and probes
	}
	base = cat(base, cfg.Env)
	api := []string{"ELEVENLABS_BASE_URL=" + c.EmulatorURL, "ELEVENLABS_API_KEY=" + apiKey}
	db := []string{"DATABASE_URL=" + cfg.DatabaseURL}

	c.Emulator = c.proc("emulator", cfg.Bin.Scribeq, cat([]string{"emulator"}, cfg.EmulatorArgs), cat(base, []string{
		"SCRIBEQ_EMULATOR_ADDR=" + strings.TrimPrefix(c.EmulatorURL, "http://"),
		"SCRIBEQ_EMULATOR_WEBHOOK_URL=" + c.IngressURL,
		"SCRIBEQ_EMULATOR_DELAY=" + cfg.EmulatorDelay.String(),
	}))
	c.Ingress = c.proc("ingress", cfg.Bin.Scribeq, cat([]string{"ingress"}, cfg.IngressArgs), cat(base, []string{
		"SCRIBEQ_INGRESS_ADDR=" + ingressAddr,
		"SCRIBEQ_WEBHOOK_PATH=" + webhookPath,
	}))
	c.Sink = c.proc("sink", cfg.Bin.Scribeq, cat([]string{"sink"}, cfg.SinkArgs), cat(base, db))
	for i := range cfg.Submitters {
		c.Submitters = append(c.Submitters, c.proc(fmt.Sprintf("submitter-%d", i+1), cfg.Bin.Scribeq,
			cat([]string{"submitter"}, cfg.SubmitterArgs), cat(base, api, []string{
				"SCRIBEQ_CONCURRENCY=" + strconv.Itoa(cfg.Concurrency),
				"SCRIBEQ_MAX_CONCURRENT=" + strconv.Itoa(cfg.MaxConcurrent),
				"SCRIBEQ_IN_DOUBT_GRACE=" + cfg.InDoubtGrace.String(),
			})))
	}
	if cfg.Reconciler {
		c.Reconciler = c.proc("reconciler", cfg.Bin.Scribeq, cat([]string{"reconciler"}, cfg.ReconcilerArgs),
			cat(base, api, db))
	}

	nc, err := nats.Connect(c.NatsURL, nats.Name("chaos-harness"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatalf("chaos: connect to nats-server: %v", err)
	}
	c.nc = nc
	t.Cleanup(nc.Close) // runs before stopAll: NATS is still up
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}

	// The emulator and ingress first, so that no webhook of the first jobs
	// meets a closed port (it would be lost, as with ElevenLabs).
	for _, p := range append([]*Proc{c.Emulator, c.Ingress, c.Sink}, c.Submitters...) {
		c.mustStart(t, ctx, p)
	}
	if c.Reconciler != nil {
		c.mustStart(t, ctx, c.Reconciler)
	}
	return c
}

func (c *Cluster) proc(name, path string, args, env []string) *Proc {
	full := cat([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.Dir, "work"),
		"TMPDIR=" + os.TempDir(),
	}, env)
	return &Proc{
		Name: name, Path: path, Args: args, Env: full,
		Dir: filepath.Join(c.Dir, "work"),
		Log: filepath.Join(c.Dir, "logs", name+".log"),
	}
}

func (c *Cluster) mustStart(t testing.TB, ctx context.Context, p *Proc) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitReady(wctx, p); err != nil {
		t.Fatalf("%v\n--- %s log:\n%s", err, p.Name, p.Tail(40))
	}
}

// Procs lists every process, NATS first.
func (c *Cluster) Procs() []*Proc {
	ps := []*Proc{c.NATS, c.Emulator, c.Ingress, c.Sink}
	ps = append(ps, c.Submitters...)
	if c.Reconciler != nil {
		ps = append(ps, c.Reconciler)
	}
	var out []*Proc
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// WaitReady waits until p serves: its health endpoint answers, or for the
// consumers, its durable consumer exists. It fails at once if p exits.
func (c *Cluster) WaitReady(ctx context.Context, p *Proc) error {
	var check func(context.Context) error
	switch {
	case p == c.NATS:
		check = func(ctx context.Context) error { return httpOK(ctx, c.NatsMonitor+"/healthz") }
	case p == c.Emulator:
		check = func(ctx context.Context) error { return httpOK(ctx, c.EmulatorURL+"/healthz") }
	case p == c.Ingress:
		check = func(ctx context.Context) error {
			return httpOK(ctx, strings.TrimSuffix(c.IngressURL, webhookPath)+"/healthz")
		}
	case p == c.Sink:
		check = func(ctx context.Context) error { return c.consumerExists(ctx, event.StreamEvents, queue.ConsumerSink) }
	default:
		// Submitters (and the reconciler): nothing to probe from outside
		// beyond the consumer they share.
		check = func(ctx context.Context) error {
			return c.consumerExists(ctx, event.StreamJobs, queue.ConsumerSubmitter)
		}
	}
	return Until(ctx, "chaos: "+p.Name+" ready", 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, fmt.Errorf("chaos: %s exited while starting", p.Name)
		}
		return check(ctx) == nil, nil
	})
}

func (c *Cluster) consumerExists(ctx context.Context, stream, name string) error {
	if c.js == nil {
		return errors.New("no harness connection yet")
	}
	_, err := c.js.Consumer(ctx, stream, name)
	return err
}

// ConsumerInfo returns a durable consumer's state (ack pending, redelivered...).
func (c *Cluster) ConsumerInfo(ctx context.Context, stream, name string) (*jetstream.ConsumerInfo, error) {
	cons, err := c.js.Consumer(ctx, stream, name)
	if err != nil {
		return nil, fmt.Errorf("chaos: consumer %s/%s: %w", stream, name, err)
	}
	return cons.Info(ctx)
}

// Ledger reads every convert call the emulator saw (GET /emulator/ledger).
func (c *Cluster) Ledger(ctx context.Context) ([]emulator.Call, error) {
	var calls []emulator.Call
	return calls, c.getJSON(ctx, "/emulator/ledger", &calls)
}

// Stats reads the emulator's counters, injected faults included
// (GET /emulator/stats).
func (c *Cluster) Stats(ctx context.Context) (*emulator.Stats, error) {
	var st emulator.Stats
	return &st, c.getJSON(ctx, "/emulator/stats", &st)
}

func (c *Cluster) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.EmulatorURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: GET %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("chaos: GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("chaos: GET %s: decode: %w", path, err)
	}
	return nil
}

// SetFaults changes the emulator's fault knobs while a run goes on
// (PUT /emulator/faults); calls that arrive afterwards draw from them.
func (c *Cluster) SetFaults(ctx context.Context, v emulator.Faults) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("chaos: encode faults: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.EmulatorURL+"/emulator/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: set emulator faults: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("chaos: set emulator faults: %s: %s", resp.Status, b)
	}
	return nil
}

// Tails returns the last n lines of every process's log, for a failure message.
func (c *Cluster) Tails(n int) string {
	var b strings.Builder
	for _, p := range c.Procs() {
		fmt.Fprintf(&b, "\n--- %s (started %d×, log %s):\n%s\n", p.Name, p.Starts(), p.Log, p.Tail(n))
	}
	return b.String()
}

// Unexpected lists every exit the harness did not cause.
func (c *Cluster) Unexpected() []string {
	var out []string
	for _, p := range c.Procs() {
		out = append(out, p.Unexpected()...)
	}
	return out
}

func (c *Cluster) stopAll(t testing.TB) {
	// The workers together (each may take its shutdown deadline), then NATS.
	var wg sync.WaitGroup
	for _, p := range c.Procs() {
		if p == c.NATS {
			continue
		}
		wg.Go(func() {
			if killed, err := p.Stop(20 * time.Second); err != nil {
				t.Errorf("chaos: stop %s: %v", p.Name, err)
			} else if killed {
				t.Logf("chaos: %s did not exit within 20s of SIGTERM and was killed", p.Name)
			}
		})
	}
	wg.Wait()
	if c.NATS != nil {
		if _, err := c.NATS.Stop(20 * time.Second); err != nil {
			t.Errorf("chaos: stop nats-server: %v", err)
		}
	}
}

// Settled reports whether both durable consumers have nothing pending and
// nothing unacknowledged: no submitter holds a job (a stalled convert call,
// an in-doubt claim) and the sink has applied every event.
func (c *Cluster) Settled(ctx context.Context) (bool, error) {
	for _, sc := range [][2]string{{event.StreamJobs, queue.ConsumerSubmitter}, {event.StreamEvents, queue.ConsumerSink}} {
		info, err := c.ConsumerInfo(ctx, sc[0], sc[1])
		if err != nil {
			return false, err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return false, nil
		}
	}
	return true, nil
}

// QueueState describes the two durable consumers (pending, in flight,
// redelivered), for a failure message.
func (c *Cluster) QueueState(ctx context.Context) string {
	var b strings.Builder
	for _, sc := range [][2]string{{event.StreamJobs, queue.ConsumerSubmitter}, {event.StreamEvents, queue.ConsumerSink}} {
		info, err := c.ConsumerInfo(ctx, sc[0], sc[1])
		if err != nil {
			fmt.Fprintf(&b, "%s/%s: %v; ", sc[0], sc[1], err)
			continue
		}
		fmt.Fprintf(&b, "%s/%s: %d pending, %d unacked, %d redelivered; ",
			sc[0], sc[1], info.NumPending, info.NumAckPending, info.NumRedelivered)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// Until calls cond every interval until it returns true, returns an error,
// or ctx ends. what names the condition in the timeout error.
func Until(ctx context.Context, what string, interval time.Duration, cond func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not reached: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// freePorts finds n distinct free loopback ports. A port could be taken
// between this and the process binding it; on loopback in a test that is
// rare enough to accept, and the start then fails loudly.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("chaos: find a free port: %v", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// cat joins lists into a new slice, so no two processes share a backing array.
func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
