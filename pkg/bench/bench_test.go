//go:build bench

package bench_test

import (
	"os"
	"sync"
	"testing"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// part is one section of the table; parts register themselves in init.
type part struct {
	name string // subtest name: slots, upload, transcripts, ingress, sink, e2e, search
	run  func(t *testing.T) []bench.Row
}

var (
	partsMu sync.Mutex
	parts   []part
)

func register(name string, run func(t *testing.T) []bench.Row) {
	partsMu.Lock()
	defer partsMu.Unlock()
	parts = append(parts, part{name, run})
}

// TestBench runs every part in the order of the issue and prints one table.
// BENCH_MARKDOWN=path also writes it as Markdown.
func TestBench(t *testing.T) {
	order := map[string]int{"slots": 1, "upload": 2, "transcripts": 3, "ingress": 4, "sink": 5, "e2e": 6, "search": 7}
	ps := append([]part(nil), parts...)
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if order[ps[j].name] < order[ps[i].name] {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	var rows []bench.Row
	for _, p := range ps {
		t.Run(p.name, func(t *testing.T) { rows = append(rows, p.run(t)...) })
	}
	bench.Print(os.Stdout, rows)
	if path := os.Getenv("BENCH_MARKDOWN"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		bench.Markdown(f, rows)
	}
}
