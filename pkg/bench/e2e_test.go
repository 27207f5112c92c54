//go:build bench

package bench_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/chaos"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("e2e", benchE2E) }

// Part 6, end to end: small jobs through `scribeq submit` → submitters →
// emulator (no processing delay, no limit) → ingress → sink, all real
// processes, timed from jobs.queued_at (intake's clock) to the commit of
// the transcript: the recorded_at of the job_events row that completed
// the job, Postgres's now() in the sink's transaction. transcripts.
// received_at is when ingress took the webhook, so it splits the time.
const e2eJobs = 10_000 // BENCH_E2E_JOBS overrides

func benchE2E(t *testing.T) []bench.Row {
	n := envInt(t, "BENCH_E2E_JOBS", e2eJobs)
	cmd := "make bench T=e2e"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir := t.TempDir()
	load, err := chaos.MakeLoad(filepath.Join(dir, "load"), n, 6)
	if err != nil {
		t.Fatal(err)
	}
	bin := chaos.Build(t)
	dbURL := pgtest.NewDB(t)
	c := chaos.Start(t, ctx, chaos.Config{
		Bin: bin, DatabaseURL: dbURL, Dir: filepath.Join(dir, "cluster"),
		Submitters: 2, Concurrency: 16, MaxConcurrent: 75, LogLevel: "warn",
		// The flag beats the SCRIBEQ_EMULATOR_DELAY the cluster sets.
		EmulatorArgs: []string{"--delay=0s"},
	})
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	start := time.Now()
	jobs, err := c.SubmitCLI(ctx, load, "bench-e2e")
	if err != nil {
		t.Fatalf("e2e: submit: %v", err)
	}
	submitted := time.Since(start)
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.JobID
	}
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Minute)
	defer wcancel()
	if err := chaos.Until(wctx, "e2e: all jobs terminal", 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		done, err := chaos.Terminal(ctx, pool, ids)
		return err == nil && done == len(ids), nil
	}); err != nil {
		t.Fatalf("%v\nqueue: %s%s", err, c.QueueState(ctx), c.Tails(20))
	}
	done := time.Since(start)

	var lat, toIngress []float64 // seconds: queued → committed, queued → webhook taken
	var first, last time.Time
	rows, err := pool.Query(ctx, `SELECT j.queued_at, t.received_at, e.recorded_at FROM jobs j
		JOIN transcripts t ON t.request_id = j.request_id
		JOIN job_events e ON e.job_id = j.job_id AND e.to_state = 'completed'
		WHERE j.job_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var q, w, r time.Time
		if err := rows.Scan(&q, &w, &r); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, r.Sub(q).Seconds())
		toIngress = append(toIngress, w.Sub(q).Seconds())
		if first.IsZero() || q.Before(first) {
			first = q
		}
		if r.After(last) {
			last = r
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lat) != n {
		t.Fatalf("e2e: %d of %d jobs have a transcript", len(lat), n)
	}
	slices.Sort(lat)
	slices.Sort(toIngress)
	span := last.Sub(first).Seconds()
	rate := float64(n) / span
	submitRate := float64(n) / submitted.Seconds()
	t.Logf("e2e: %d jobs; submit took %s (%.0f jobs/s); all terminal after %s; first queued → last committed %.1f s; p50 %.3f s, p99 %.3f s, max %.3f s; "+
		"queued → webhook at ingress p50 %.3f s, p99 %.3f s",
		n, submitted.Round(100*time.Millisecond), submitRate, done.Round(100*time.Millisecond), span,
		e2ePercentile(lat, 50), e2ePercentile(lat, 99), lat[len(lat)-1], e2ePercentile(toIngress, 50), e2ePercentile(toIngress, 99))

	part := "6 end to end"
	what := fmt.Sprintf("%d small jobs", n)
	return []bench.Row{
		{Part: part, Figure: "jobs/s, first queued → last committed (" + what + ")", Value: fmt.Sprintf("%.0f jobs/s", rate),
			Limit: fmt.Sprintf("%.0f jobs/s intake (same run)", submitRate), Ratio: bench.Pct(rate, submitRate), Command: cmd},
		{Part: part, Figure: "latency queued → committed p50", Value: e2eSecs(e2ePercentile(lat, 50)), Command: cmd},
		{Part: part, Figure: "latency queued → committed p99", Value: e2eSecs(e2ePercentile(lat, 99)), Command: cmd},
	}
}

// e2ePercentile is the nearest-rank percentile of sorted values.
func e2ePercentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func e2eSecs(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", 1000*s)
	}
	return fmt.Sprintf("%.2f s", s)
}
