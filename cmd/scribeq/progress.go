package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how an upload is going: a bar (files, bytes, rate, ETA) on
// a terminal, and a plain line every few seconds otherwise, so logs of a
// long run in CI or under systemd stay readable.
type progress struct {
	mu         sync.Mutex
	out        io.Writer // result lines
	bar        *progressbar.ProgressBar
	plain      io.Writer // progress lines when there is no terminal
	items      int
	done       int
	total      int64
	sent       int64
	start      time.Time
	lastReport time.Time
	every      time.Duration
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// newProgress tracks items files totalling bytes. mode is auto, bar or
// plain; auto picks the bar when stderr is a terminal.
func newProgress(mode string, items int, bytes int64) *progress {
	p := &progress{out: os.Stdout, items: items, total: bytes, start: time.Now(), every: 5 * time.Second}
	useBar := mode == "bar" || (mode == "auto" && isTerminal(os.Stderr) && isTerminal(os.Stdout))
	if useBar && mode != "plain" {
		p.bar = progressbar.NewOptions64(bytes,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetDescription(p.describe()),
			progressbar.OptionClearOnFinish(),
		)
	} else {
		p.plain = os.Stderr
	}
	return p
}

func (p *progress) describe() string {
	return fmt.Sprintf("%d/%d files", p.done, p.items)
}

// Bytes sets how many bytes are uploaded so far.
func (p *progress) Bytes(sent int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = sent
	if p.bar != nil {
		_ = p.bar.Set64(sent)
		return
	}
	p.reportLocked(false)
}

// Item counts one more item finished and prints its line.
func (p *progress) Item(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if p.bar != nil {
		_ = p.bar.Clear()
		fmt.Fprintln(p.out, line)
		p.bar.Describe(p.describe())
		return
	}
	fmt.Fprintln(p.out, line)
	p.reportLocked(false)
}

// Finish removes the bar, or prints the last plain line.
func (p *progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.reportLocked(true)
}

func (p *progress) reportLocked(final bool) {
	now := time.Now()
	if !final && now.Sub(p.lastReport) < p.every {
		return
	}
	p.lastReport = now
	elapsed := now.Sub(p.start)
	rate := float64(p.sent) / max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("progress: %d/%d files, %s of %s, %s/s", p.done, p.items, humanBytes(p.sent), humanBytes(p.total), humanBytes(int64(rate)))
	if !final && rate > 0 && p.total > p.sent {
		eta := time.Duration(float64(p.total-p.sent) / rate * float64(time.Second))
		line += ", ETA " + eta.Round(time.Second).String()
	}
	if final {
		line += ", took " + elapsed.Round(time.Millisecond).String()
	}
	fmt.Fprintln(p.plain, line)
}

// humanBytes prints n in SI units: 1.2 GB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
