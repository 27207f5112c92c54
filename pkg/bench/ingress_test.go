//go:build bench

package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/chaos"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("ingress", benchIngress) }

// The chaos cluster's webhook secret (pkg/chaos passes it to the ingress as
// SCRIBEQ_WEBHOOK_SECRETS); a test-only value.
const ingressSecret = "chaos-webhook-secret"

// Each level runs ingressWarm unmeasured (connections, JIT-free but caches
// and the store's first blocks), then ingressMeasure measured: 6 levels ×
// 8 s, well inside the part's 2-minute budget with the cluster's start.
const (
	ingressWarm    = time.Second
	ingressMeasure = 7 * time.Second
)

// ingressRawStream is configured like EVENTS (queue.Open) but has its own
// subjects, so the baseline's messages never reach the sink's consumer.
const (
	ingressRawStream  = "BENCH_RAW"
	ingressRawSubject = "bench.raw.completed"
)

// benchIngress measures part 4: signed ~4 KB webhooks against the real
// `scribeq ingress` at concurrency 1, 16 and 64, each beside synchronous
// JetStream publishes of the same bodies from Go into a stream configured
// like EVENTS, on the same nats-server (file storage, sync_interval always).
func benchIngress(t *testing.T) []bench.Row {
	ctx := t.Context()
	bin := chaos.Build(t)
	c := chaos.Start(t, ctx, chaos.Config{Bin: bin, DatabaseURL: pgtest.NewDB(t), Submitters: 1})
	// Only NATS and the ingress take part: the sink draining the burst into
	// Postgres would compete for the two cores with what is measured.
	benchStopProcs(t, append([]*chaos.Proc{c.Sink, c.Emulator}, c.Submitters...)...)

	nc, err := nats.Connect(c.NatsURL, nats.Name("bench-raw"))
	if err != nil {
		t.Fatalf("bench: connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       ingressRawStream,
		Subjects:   []string{ingressRawSubject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: time.Hour,
		Replicas:   1,
		DenyDelete: true,
		DenyPurge:  true,
	}); err != nil {
		t.Fatalf("bench: create raw stream: %v", err)
	}

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute,
	}}
	t.Cleanup(client.CloseIdleConnections)
	tmpl := newWebhookTemplate()
	t.Logf("webhook body: %d bytes", len(tmpl.body("x", 0)))

	post := func(ctx context.Context, run string, i int) error {
		body := tmpl.body(run, i)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.IngressURL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(ingressSecret, time.Now(), body))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ingress answered %s", resp.Status)
		}
		return nil
	}
	publish := func(ctx context.Context, run string, i int) error {
		body := tmpl.body(run, i)
		_, err := js.Publish(ctx, ingressRawSubject, body, jetstream.WithMsgID(tmpl.requestID(run, i)+":completed"))
		return err
	}

	perf := benchPerfStart(t, "ingress", c.Ingress.PID())
	natsPerf := benchPerfStart(t, "ingress-nats", c.NATS.PID())
	cpu0, natsCPU0 := benchCPU(c.Ingress.PID()), benchCPU(c.NATS.PID())
	var rows []bench.Row
	for _, conc := range []int{1, 16, 64} {
		loadLabel := loadAvg()
		ing := benchRunLoad(ctx, conc, fmt.Sprintf("ing%d", conc), post)
		cpu1, natsCPU1 := benchCPU(c.Ingress.PID()), benchCPU(c.NATS.PID())
		raw := benchRunLoad(ctx, conc, fmt.Sprintf("raw%d", conc), publish)
		cpu2, natsCPU2 := benchCPU(c.Ingress.PID()), benchCPU(c.NATS.PID())
		t.Logf("c=%d (load %s): ingress %d ok %d errors (ingress CPU %s, nats-server CPU %s); raw %d ok %d errors (nats-server CPU %s)",
			conc, loadLabel, ing.n, ing.errs, cpu1-cpu0, natsCPU1-natsCPU0, raw.n, raw.errs, natsCPU2-natsCPU1)
		cpu0, natsCPU0 = cpu2, natsCPU2
		for _, r := range []benchLoad{ing, raw} {
			if r.errs > 0 {
				t.Errorf("c=%d: %d requests failed, first: %v", conc, r.errs, r.firstErr)
			}
		}
		part := fmt.Sprintf("4 ingress burst c=%d", conc)
		rateRow := bench.Row{
			Part: part, Figure: "requests/s",
			Value: fmt.Sprintf("%.0f/s", ing.rate()), Limit: fmt.Sprintf("%.0f/s", raw.rate()),
			Ratio: bench.Pct(ing.rate(), raw.rate()), Command: "make bench T=ingress",
		}
		latRow := bench.Row{
			Part: part, Figure: "p50 / p99",
			Value:   fmt.Sprintf("%s / %s", benchMs(ing.pct(50)), benchMs(ing.pct(99))),
			Limit:   fmt.Sprintf("%s / %s", benchMs(raw.pct(50)), benchMs(raw.pct(99))),
			Ratio:   fmt.Sprintf("%.1f× p99", float64(ing.pct(99))/float64(max(raw.pct(99), 1))),
			Command: "make bench T=ingress",
		}
		if conc == 64 {
			rateRow.Target, rateRow.Met = "≥ 40%", met(ing.rate() >= 0.4*raw.rate())
			latRow.Target, latRow.Met = "p99 < 50 ms", met(ing.pct(99) < 50*time.Millisecond)
		}
		rows = append(rows, rateRow, latRow)
	}
	perf()
	natsPerf()
	return rows
}

// webhookTemplate renders unique ~4 KB completed webhooks cheaply: the
// transcription is fixed, only the ids change.
type webhookTemplate struct {
	transcription string
}

func newWebhookTemplate() *webhookTemplate {
	// 19 words with their spacings: about 4 KB of webhook, like a short
	// voice note with word timestamps.
	words := []string{"The", "river", "morning", "quiet", "archive", "signal", "paper.", "Window", "seven",
		"green", "market", "letter", "station.", "Garden", "light", "table", "north", "winter", "copper."}
	var w strings.Builder
	for i, tok := range words {
		if i > 0 {
			w.WriteByte(',')
		}
		s := float64(i) * 0.4
		fmt.Fprintf(&w, `{"text":%q,"start":%.3f,"end":%.3f,"type":"word","speaker_id":"speaker_0","logprob":-0.0%02d}`, tok, s, s+0.34, i)
		if i < len(words)-1 {
			fmt.Fprintf(&w, `,{"text":" ","start":%.3f,"end":%.3f,"type":"spacing","speaker_id":"speaker_0","logprob":0}`, s+0.34, s+0.4)
		}
	}
	text := strings.Join(words, " ")
	return &webhookTemplate{transcription: fmt.Sprintf(
		`{"language_code":"eng","language_probability":0.98,"text":%q,"words":[%s],"audio_duration_secs":7.6`, text, w.String())}
}

func (w *webhookTemplate) requestID(run string, i int) string {
	return fmt.Sprintf("bench-%s-%d", run, i)
}

func (w *webhookTemplate) body(run string, i int) []byte {
	id := w.requestID(run, i)
	return fmt.Appendf(nil, `{"type":"speech_to_text_transcription","event_timestamp":%d,"data":{"request_id":%q,`+
		`"webhook_metadata":{"job_id":"job-%s"},"transcription":%s,"transcription_id":"tr-%s"}}}`,
		time.Now().Unix(), id, id, w.transcription, id)
}

// benchLoad is the outcome of one closed-loop run.
type benchLoad struct {
	n, errs  int
	firstErr error
	lat      []time.Duration // sorted
	elapsed  time.Duration
}

func (l benchLoad) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.n) / l.elapsed.Seconds()
}

func (l benchLoad) pct(p int) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	return l.lat[min(len(l.lat)-1, len(l.lat)*p/100)]
}

// benchRunLoad runs conc workers calling do back to back: ingressWarm
// unmeasured, then ingressMeasure measured (requests finished in it, their
// latencies). Each call gets a unique index within run.
func benchRunLoad(ctx context.Context, conc int, run string, do func(context.Context, string, int) error) benchLoad {
	var next atomic.Int64
	start := time.Now()
	from, until := start.Add(ingressWarm), start.Add(ingressWarm+ingressMeasure)
	var mu sync.Mutex
	var out benchLoad
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var firstErr error
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				err := do(ctx, run, int(next.Add(1)))
				t1 := time.Now()
				if t0.Before(from) || t1.After(until) {
					continue
				}
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			out.errs += errs
			if out.firstErr == nil {
				out.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	out.n = len(out.lat)
	out.elapsed = ingressMeasure
	slices.Sort(out.lat)
	return out
}

// benchStopProcs stops cluster processes a part does not measure.
func benchStopProcs(t *testing.T, ps ...*chaos.Proc) {
	t.Helper()
	for _, p := range ps {
		if _, err := p.Stop(30 * time.Second); err != nil {
			t.Fatalf("bench: stop %s: %v", p.Name, err)
		}
	}
}

// benchCPU is the user and system CPU time pid has used, from
// /proc/<pid>/stat, to tell a process's own work from its waiting.
func benchCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (100 a second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	var u, st int64
	_, _ = fmt.Sscan(f[11], &u)
	_, _ = fmt.Sscan(f[12], &st)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func benchMs(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// benchPerfStart records a CPU profile of pids with perf (call graphs from
// Go's frame pointers) when BENCH_PERF names a folder, until the returned
// function is called; it then writes <name>.perf.data and a flat
// <name>.perf.txt summary there. scribeq has no pprof endpoint, and perf
// needs none. Without BENCH_PERF it does nothing.
func benchPerfStart(t *testing.T, name string, pids ...int) func() {
	dir := os.Getenv("BENCH_PERF")
	if dir == "" || len(pids) == 0 || slices.Contains(pids, 0) {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("bench: perf: %v", err)
		return func() {}
	}
	data := filepath.Join(dir, name+".perf.data")
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = fmt.Sprint(p)
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", data, "-p", strings.Join(ps, ","))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Logf("bench: perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		// perf exits with the SIGINT that ends the recording.
		if err := cmd.Wait(); err != nil && !strings.Contains(err.Error(), "interrupt") {
			t.Logf("bench: perf record: %v: %s", err, stderr.String())
		}
		out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children",
			"--sort", "symbol", "-g", "none", "--percent-limit", "0.7").Output()
		if err != nil {
			t.Logf("bench: perf report: %v", err)
			return
		}
		txt := filepath.Join(dir, name+".perf.txt")
		if err := os.WriteFile(txt, out, 0o644); err != nil {
			t.Logf("bench: perf report: %v", err)
			return
		}
		t.Logf("perf profile of %s: %s (summary %s)", name, data, txt)
	}
}
