//go:build bench

package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("search", benchSearch) }

// Part 7, search. pkg/query's BenchmarkSearch seeds the corpus and times
// query.Search (what `scribeq search` runs); this part runs it as a
// subprocess against this binary's Postgres and turns its metrics into rows.
// BENCH_SEARCH_TRANSCRIPTS overrides the corpus size (default 100,000).
func benchSearch(t *testing.T) []bench.Row {
	n := envInt(t, "BENCH_SEARCH_TRANSCRIPTS", 100_000)
	cmd := "make bench T=search"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The benchmark's pgtest makes its own databases; any database URL of
	// this server will do as its admin connection (pgtest's role may
	// CREATE DATABASE), so one server serves both binaries.
	dbURL := os.Getenv(pgtest.EnvURL)
	if dbURL == "" {
		dbURL = pgtest.NewDB(t)
	}
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkSearch$", "-benchtime", "1x", "-count", "1",
		"../query/", "-args", "-search.transcripts", strconv.Itoa(n)}
	start := time.Now()
	c := exec.CommandContext(ctx, "go", args...)
	c.Env = append(os.Environ(), pgtest.EnvURL+"="+dbURL)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("search: go %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	t.Logf("search: BenchmarkSearch took %s:\n%s", time.Since(start).Round(time.Second), out.String())

	metrics, err := searchMetrics(out.Bytes())
	if err != nil {
		t.Fatalf("search: %v\n%s", err, out.String())
	}
	part := "7 search"
	var rows []bench.Row
	for _, kind := range []string{"very-common", "common", "rare", "phrase", "common+batch"} {
		p50, ok50 := metrics[kind+"-p50-ms"]
		p95, ok95 := metrics[kind+"-p95-ms"]
		if !ok50 || !ok95 {
			t.Fatalf("search: no p50/p95 for %s in the benchmark's output:\n%s", kind, out.String())
		}
		met := "no"
		if p95 < 100 {
			met = "yes"
		}
		rows = append(rows, bench.Row{
			Part: part, Figure: fmt.Sprintf("%s terms p50 / p95 (%d transcripts)", kind, n),
			Value: fmt.Sprintf("%.1f / %.1f ms", p50, p95), Target: "p95 < 100 ms", Met: met, Command: cmd,
		})
	}
	if s, ok := metrics["seed-s"]; ok {
		t.Logf("search: seeding took %.0f s", s)
	}
	return rows
}

// searchMetrics reads the custom metrics of the BenchmarkSearch result
// line: "BenchmarkSearch-2  1  123 ns/op  45.6 common-p50-ms ...".
func searchMetrics(out []byte) (map[string]float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "BenchmarkSearch") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a log header, not the result line
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("metric %q: %w", f[i]+" "+f[i+1], err)
			}
			m[f[i+1]] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("no BenchmarkSearch result line")
}
