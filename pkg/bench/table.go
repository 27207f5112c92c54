// Package bench measures scribeq against the limits of the machine it runs
// on: every figure is printed beside a baseline taken in the same run (raw
// JetStream publishes, a raw COPY, curl), because ratios survive noisy
// machines and absolute numbers do not. `make bench` runs it and prints one
// table; nothing here is asserted in the test suite.
package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Row is one line of the table.
type Row struct {
	// Part is the numbering: "1 slot use", "4 ingress burst c=64".
	Part string
	// Figure names what was measured: "busy slots", "requests/s".
	Figure string
	// Value is scribeq's figure, already formatted with its unit.
	Value string
	// Limit is the baseline measured in the same run ("" when there is none).
	Limit string
	// Ratio is Value/Limit as a percentage, or another comparison ("" if none).
	Ratio string
	// Target is the target ("≥ 95%", "p99 < 50 ms").
	Target string
	// Met says whether the target was met: "yes", "no", or "" (no target).
	Met string
	// Command reruns just this figure.
	Command string
}

// Print writes rows as an aligned table with one header.
func Print(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tFIGURE\tSCRIBEQ\tLIMIT\tRATIO\tTARGET\tMET\tCOMMAND")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join([]string{r.Part, r.Figure, r.Value, dash(r.Limit), dash(r.Ratio), dash(r.Target), dash(r.Met), r.Command}, "\t"))
	}
	_ = tw.Flush()
}

// Markdown writes rows as a Markdown table for docs/performance.md.
func Markdown(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| part | figure | scribeq | limit | ratio | target | met | command |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | `%s` |\n", r.Part, r.Figure, r.Value, dash(r.Limit), dash(r.Ratio), dash(r.Target), dash(r.Met), r.Command)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Pct formats a/b as a percentage.
func Pct(a, b float64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}
