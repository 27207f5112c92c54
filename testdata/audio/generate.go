//go:build ignore

// generate.go makes the demo recordings in testdata/audio: each sentence is
// spoken by espeak-ng, converted by sox to 16 kHz mono 16-bit PCM, and
// stored with the sentence as its LIST/INFO ICMT comment, which the emulator
// returns as the transcript.
//
// Run from the repository root (needs espeak-ng and sox on PATH):
//
//	go run testdata/audio/generate.go
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/audio"
)

var sentences = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Please call Stella and ask her to bring these things with her.",
	"The archive holds every recording we made last year.",
	"Turn left at the old bridge and follow the river north.",
	"A cup of tea tastes better on a rainy afternoon.",
	"Our meeting starts at nine o'clock tomorrow morning.",
}

const (
	outDir   = "testdata/audio"
	maxTotal = 1 << 20 // keep the repository small
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install -y espeak-ng sox): %w", tool, err)
		}
	}
	if _, err := os.Stat(outDir); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	tmp, err := os.MkdirTemp("", "scribeq-audio-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var total int
	for i, s := range sentences {
		name := fmt.Sprintf("%02d-%s.wav", i+1, slug(s))
		raw := filepath.Join(tmp, "raw.wav")
		conv := filepath.Join(tmp, "conv.wav")
		// -s 150 words per minute: clear, and short files.
		if err := command(ctx, "espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, s); err != nil {
			return err
		}
		// -D: no dither, so the output (and its sha256) is the same every run.
		if err := command(ctx, "sox", "-D", raw, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", conv); err != nil {
			return err
		}
		wav, err := os.ReadFile(conv)
		if err != nil {
			return err
		}
		wav, err = audio.SetWAVComment(wav, s)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(outDir, name), wav, 0o644); err != nil {
			return err
		}
		total += len(wav)
		fmt.Printf("%s  %6d bytes  %q\n", name, len(wav), s)
	}
	if total > maxTotal {
		return fmt.Errorf("recordings total %d bytes, more than %d", total, maxTotal)
	}
	fmt.Printf("total %d bytes\n", total)
	return nil
}

func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// slug is the first few words, lowercase, joined by dashes.
func slug(s string) string {
	var words []string
	for _, w := range strings.Fields(strings.ToLower(s)) {
		w = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, w)
		if w != "" {
			words = append(words, w)
		}
		if len(words) == 4 {
			break
		}
	}
	return strings.Join(words, "-")
}
