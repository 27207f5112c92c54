//go:build bench

package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/chaos"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("slots", benchSlots) }

// Part 1, provider slot use. The emulator enforces a plan of 75 slots and
// takes the real API's 0.3·D + 2 s to process, divided by a scale chosen
// so that the ideal makespan of the whole load is slotsIdealSecs; the real
// submitters share --max-concurrent 75. Slot use is computed from the
// emulator's ledger: an accepted call holds its slots for exactly its
// processing time, from acceptance.
const (
	slotsPlan      = 75
	slotsJobs      = 2000 // BENCH_SLOTS_JOBS overrides
	slotsIdealSecs = 60.0 // BENCH_SLOTS_IDEAL overrides (seconds)
	slotsSeed      = 5
	// slotsRate is the WAVs' sample rate: 8 Hz keeps an hour of audio at 57 KB.
	slotsRate = 8
)

// slotsDurations draws the load's audio durations: mostly short calls, a
// fifth between 8 and 24 minutes (2–3 slots) and one in twenty over 24
// minutes (4 slots).
func slotsDurations(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	between := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	out := make([]float64, n)
	for i := range out {
		switch p := rng.Float64(); {
		case p < 0.45:
			out[i] = between(30, 300)
		case p < 0.70:
			out[i] = between(300, 480)
		case p < 0.88:
			out[i] = between(480, 960)
		case p < 0.95:
			out[i] = between(960, 1440)
		default:
			out[i] = between(1440, 3600)
		}
	}
	return out
}

// slotsCost is what the emulator counts for a mono file (emulator.slotsFor).
func slotsCost(d float64) int { return min(4, max(1, int(math.Ceil(d/480)))) }

func benchSlots(t *testing.T) []bench.Row {
	n := envInt(t, "BENCH_SLOTS_JOBS", slotsJobs)
	idealTarget := envFloat(t, "BENCH_SLOTS_IDEAL", slotsIdealSecs)
	cmd := "make bench T=slots"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The scale that makes Σ slots·(0.3·D + 2 s) / scale = 75 · idealTarget.
	durs := slotsDurations(n, slotsSeed)
	var realSlotSecs float64
	over8 := 0
	for _, d := range durs {
		realSlotSecs += float64(slotsCost(d)) * (0.3*d + 2)
		if d > 480 {
			over8++
		}
	}
	scale := realSlotSecs / (slotsPlan * idealTarget)
	perSec := 0.3 / scale
	base := time.Duration(2 / scale * float64(time.Second))
	procTime := func(d float64) time.Duration {
		return base + time.Duration(perSec*d*float64(time.Second))
	}

	dir := t.TempDir()
	load := filepath.Join(dir, "load")
	if err := os.MkdirAll(load, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for i, d := range durs {
		buf.Reset()
		// A comment keeps each file distinct and its transcript short: the
		// part measures slots, not transcript size.
		samples := make([]int16, int(d*slotsRate))
		if err := audio.WriteWAV(&buf, slotsRate, samples, fmt.Sprintf("slots bench recording %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(load, fmt.Sprintf("rec-%05d.wav", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	bin := chaos.Build(t)
	dbURL := pgtest.NewDB(t)
	c := chaos.Start(t, ctx, chaos.Config{
		Bin: bin, DatabaseURL: dbURL, Dir: filepath.Join(dir, "cluster"),
		Submitters: 2, Concurrency: 16, MaxConcurrent: slotsPlan,
		EmulatorDelay: base, LogLevel: "warn",
		EmulatorArgs: []string{
			"--max-concurrent=" + strconv.Itoa(slotsPlan),
			"--seconds-per-audio-second=" + strconv.FormatFloat(perSec, 'g', 6, 64),
		},
	})
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	t.Logf("slots: %d jobs (%d over 8 min), processing scaled 1/%.0f (delay %s + %.4f s per audio second); ideal makespan %.1f s",
		n, over8, scale, base.Round(time.Millisecond), perSec, idealTarget)

	// A cross-check of the ledger's figure: the emulator's own count of
	// slots in use, sampled every 50 ms until the last job is terminal.
	type sample struct {
		at    time.Time
		slots int
	}
	var samples []sample
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := c.Stats(sctx); err == nil {
				samples = append(samples, sample{time.Now(), st.Slots})
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	jobs, err := c.SubmitCLI(ctx, &chaos.Load{Dir: load}, "bench-slots")
	if err != nil {
		t.Fatalf("slots: submit: %v", err)
	}
	submitted := time.Since(start)
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.JobID
	}
	wctx, wcancel := context.WithTimeout(ctx, 6*time.Minute)
	defer wcancel()
	if err := chaos.Until(wctx, "slots: all jobs terminal", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		done, err := chaos.Terminal(ctx, pool, ids)
		return err == nil && done == len(ids), nil
	}); err != nil {
		t.Fatalf("%v\nqueue: %s%s", err, c.QueueState(ctx), c.Tails(20))
	}
	committed := time.Since(start)
	stopSampling()
	<-sampled

	ledger, err := c.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var failed, failed429 int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'failed'),
		count(*) FILTER (WHERE state = 'failed' AND (error ILIKE '%429%' OR error ILIKE '%concurren%'))
		FROM jobs WHERE job_id = ANY($1)`, ids).Scan(&failed, &failed429); err != nil {
		t.Fatal(err)
	}

	u := slotsUse(ledger, procTime, start)
	t.Logf("slots: %s", slotsWaits(ctx, t, pool, ids, ledger))
	busy := u.slotSecs / (slotsPlan * u.end.Sub(start).Seconds())
	makespan := u.end.Sub(start).Seconds()
	ideal := u.slotSecs / slotsPlan
	steady := u.busyBetween(u.firstAccept, u.lastAccept) / (slotsPlan * u.lastAccept.Sub(u.firstAccept).Seconds())
	var sampledSum float64
	var sampledN int
	for _, sm := range samples {
		if !sm.at.Before(start) && !sm.at.After(u.end) {
			sampledSum += float64(sm.slots) / slotsPlan
			sampledN++
		}
	}
	sampledBusy := sampledSum / float64(max(1, sampledN))
	// Idle slot time by phase, as shares of all slot time in the makespan:
	// before the first call was accepted, while jobs were being handed out,
	// and the tail after the last acceptance (nothing left to start).
	idle := func(a, b time.Time) float64 {
		return (slotsPlan*b.Sub(a).Seconds() - u.busyBetween(a, b)) / (slotsPlan * makespan)
	}
	idleStart, idleBacklog, idleTail := idle(start, u.firstAccept), idle(u.firstAccept, u.lastAccept), idle(u.lastAccept, u.end)
	t.Logf("slots: first acceptance at %.2f s, last at %.1f s; idle slot time: %.1f%% before the first acceptance, %.1f%% between, %.1f%% in the tail",
		u.firstAccept.Sub(start).Seconds(), u.lastAccept.Sub(start).Seconds(), 100*idleStart, 100*idleBacklog, 100*idleTail)
	t.Logf("slots: submit took %s; last completion at %.1f s, last commit at %.1f s; %d accepted calls, peak %d slots; "+
		"429s: %d (refused %v); failed %d (%d by 429); busy %.1f%%, %.1f%% between first and last acceptance",
		submitted.Round(100*time.Millisecond), makespan, committed.Seconds(), u.accepted, st.PeakSlots,
		st.TooManyConcurrent, st.Refused, failed, failed429, 100*busy, 100*steady)

	part := "1 slot use"
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	return []bench.Row{
		{Part: part, Figure: fmt.Sprintf("busy slots of %d, first submit → last completion (%d jobs, %d over 8 min, time scaled 1/%.0f)", slotsPlan, n, over8, scale),
			Value: fmt.Sprintf("%.1f%%", 100*busy), Limit: "100%", Ratio: fmt.Sprintf("%.1f%%", 100*busy), Target: "≥ 95%", Met: met(busy >= 0.95), Command: cmd},
		{Part: part, Figure: "busy slots, first → last acceptance (backlog phase)",
			Value: fmt.Sprintf("%.1f%%", 100*steady), Limit: "100%", Ratio: fmt.Sprintf("%.1f%%", 100*steady), Command: cmd},
		{Part: part, Figure: fmt.Sprintf("busy slots, emulator's own count sampled every 50 ms (%d samples)", sampledN),
			Value: fmt.Sprintf("%.1f%%", 100*sampledBusy), Limit: "100%", Ratio: fmt.Sprintf("%.1f%%", 100*sampledBusy), Command: cmd},
		{Part: part, Figure: "idle slot time: before 1st acceptance · backlog · tail",
			Value: fmt.Sprintf("%.1f%% · %.1f%% · %.1f%%", 100*idleStart, 100*idleBacklog, 100*idleTail), Command: cmd},
		{Part: part, Figure: "makespan vs ideal (slot-seconds / 75)",
			Value: fmt.Sprintf("%.1f s", makespan), Limit: fmt.Sprintf("%.1f s", ideal), Ratio: bench.Pct(ideal, makespan), Command: cmd},
		{Part: part, Figure: "429s received", Value: strconv.Itoa(st.TooManyConcurrent), Command: cmd},
		{Part: part, Figure: "jobs failed by 429", Value: strconv.Itoa(failed429), Target: "0", Met: met(failed429 == 0), Command: cmd},
	}
}

// slotsUsage is the slot occupancy the ledger shows.
type slotsUsage struct {
	spans                   []slotsSpan
	slotSecs                float64
	accepted                int
	firstAccept, lastAccept time.Time
	end                     time.Time // the last processing end
}

type slotsSpan struct {
	from, to time.Time
	slots    int
}

// slotsUse turns accepted calls into spans of held slots. A call's At is
// when its request arrived, a few milliseconds before the upload ended and
// the slots were taken; both ends shift alike, so slot-seconds are exact.
func slotsUse(ledger []emulator.Call, procTime func(float64) time.Duration, start time.Time) slotsUsage {
	u := slotsUsage{end: start}
	for _, c := range ledger {
		if !c.Accepted {
			continue
		}
		s := slotsSpan{from: c.At, to: c.At.Add(procTime(c.AudioDurationSecs)), slots: c.Slots}
		u.spans = append(u.spans, s)
		u.slotSecs += float64(s.slots) * s.to.Sub(s.from).Seconds()
		u.accepted++
		if u.firstAccept.IsZero() || c.At.Before(u.firstAccept) {
			u.firstAccept = c.At
		}
		if c.At.After(u.lastAccept) {
			u.lastAccept = c.At
		}
		if s.to.After(u.end) {
			u.end = s.to
		}
	}
	sort.Slice(u.spans, func(i, j int) bool { return u.spans[i].from.Before(u.spans[j].from) })
	return u
}

// busyBetween is the slot-seconds held within [a, b].
func (u slotsUsage) busyBetween(a, b time.Time) float64 {
	var sum float64
	for _, s := range u.spans {
		from, to := s.from, s.to
		if from.Before(a) {
			from = a
		}
		if to.After(b) {
			to = b
		}
		if to.After(from) {
			sum += float64(s.slots) * to.Sub(from).Seconds()
		}
	}
	return sum
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envFloat(t *testing.T, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return f
}

// slotsWaits sums up, by slot cost, how long jobs waited from queued to
// accepted: a costly job that waits for several slots to be free at once
// while cheap ones take each freed slot ends up in the tail.
func slotsWaits(ctx context.Context, t *testing.T, pool *pgxpool.Pool, ids []string, ledger []emulator.Call) string {
	t.Helper()
	type acc struct {
		at    time.Time
		slots int
	}
	accepted := map[string]acc{}
	for _, c := range ledger {
		if c.Accepted {
			accepted[c.JobID] = acc{c.At, c.Slots}
		}
	}
	rows, err := pool.Query(ctx, `SELECT job_id, queued_at FROM jobs WHERE job_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	waits := map[int][]float64{}
	for rows.Next() {
		var id string
		var q time.Time
		if err := rows.Scan(&id, &q); err != nil {
			t.Fatal(err)
		}
		if a, ok := accepted[id]; ok {
			waits[a.slots] = append(waits[a.slots], a.at.Sub(q).Seconds())
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("wait from queued to accepted by slot cost:")
	for cost := 1; cost <= 4; cost++ {
		w := waits[cost]
		if len(w) == 0 {
			continue
		}
		sort.Float64s(w)
		var sum float64
		for _, v := range w {
			sum += v
		}
		fmt.Fprintf(&b, " %d slot(s) ×%d mean %.1f s, p50 %.1f s, max %.1f s;", cost, len(w), sum/float64(len(w)),
			e2ePercentile(w, 50), w[len(w)-1])
	}
	return strings.TrimSuffix(b.String(), ";")
}
