package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Load is a folder of generated recordings and the transcript the emulator
// will return for each, so a job that ends with another job's text is caught.
type Load struct {
	Dir string
	// Text maps each file's path to its expected transcript text.
	Text map[string]string
}

// MakeLoad writes n small WAV files (about a quarter of a second each,
// distinct bytes for every index and seed, so every file is its own job)
// into dir.
func MakeLoad(dir string, n int, seed uint64) (*Load, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: make load: %w", err)
	}
	l := &Load{Dir: dir, Text: make(map[string]string, n)}
	var buf bytes.Buffer
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		samples := make([]int16, 2000+rng.IntN(2000))
		for j := range samples {
			samples[j] = int16(rng.IntN(4000) - 2000)
		}
		buf.Reset()
		if err := audio.WriteWAV(&buf, 8000, samples, ""); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, fmt.Sprintf("rec-%06d.wav", i))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("chaos: make load: %w", err)
		}
		l.Text[path] = emulator.TranscriptText(buf.Bytes())
	}
	return l, nil
}

// Submitted is one job intake queued.
type Submitted struct {
	JobID string
	Path  string
}

// SubmitCLI queues the load with the real `scribeq submit DIR`, as a user
// would, and returns the jobs it reports queued. Its output goes to
// logs/submit.out and logs/submit.log.
func (c *Cluster) SubmitCLI(ctx context.Context, l *Load, batch string) ([]Submitted, error) {
	p := c.proc("submit", c.Bin.Scribeq, []string{"submit", "--batch", batch, l.Dir}, []string{
		"SCRIBEQ_NATS_URL=" + c.NatsURL,
		"SCRIBEQ_LOG_FORMAT=json",
		"SCRIBEQ_LOG_LEVEL=warn",
		"SCRIBEQ_DATA_DIR=" + filepath.Join(c.Dir, "work", ".scribeq"),
	})
	cmd := exec.CommandContext(ctx, p.Path, p.Args...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	out := filepath.Join(c.Dir, "logs", "submit.out")
	stdout, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stdout.Close() }()
	stderr, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stderr.Close() }()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	jobs, bad, err := parseSubmitOutput(out)
	if err != nil {
		return nil, err
	}
	if runErr != nil || len(bad) > 0 {
		return jobs, fmt.Errorf("chaos: scribeq submit: %v; %d sources not queued (first: %q)\n%s",
			exitStatus(runErr), len(bad), first(bad), tailFile(p.Log, 20))
	}
	return jobs, nil
}

// parseSubmitOutput reads `scribeq submit`'s lines: "<status> <path>  job <id>".
func parseSubmitOutput(path string) (jobs []Submitted, bad []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: read submit output: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 4 && fields[0] == string(intake.Queued) && fields[2] == "job":
			jobs = append(jobs, Submitted{JobID: fields[3], Path: fields[1]})
		case len(fields) > 0 && (fields[0] == string(intake.Failed) || fields[0] == string(intake.Skipped) ||
			fields[0] == string(intake.AlreadySubmitted)):
			bad = append(bad, sc.Text())
		}
	}
	return jobs, bad, sc.Err()
}

// SubmitIntake queues the load in this process through pkg/intake, the
// code `scribeq submit` runs, without starting a process.
func (c *Cluster) SubmitIntake(ctx context.Context, l *Load, batch string) ([]Submitted, error) {
	nc, err := queue.Connect(c.NatsURL, "chaos-intake", nil)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	q, err := queue.Open(ctx, nc, queue.Config{})
	if err != nil {
		return nil, err
	}
	res, err := intake.New(q, nil).Submit(ctx, intake.Request{Sources: []string{l.Dir}, Batch: batch}, nil)
	if err != nil {
		return nil, fmt.Errorf("chaos: intake: %w", err)
	}
	var jobs []Submitted
	var bad []string
	for _, r := range res {
		if r.Status == intake.Queued {
			jobs = append(jobs, Submitted{JobID: r.JobID, Path: r.Source})
		} else {
			bad = append(bad, fmt.Sprintf("%s %s %s", r.Status, r.Source, r.Reason))
		}
	}
	if len(bad) > 0 {
		return jobs, fmt.Errorf("chaos: intake: %d sources not queued (first: %q)", len(bad), bad[0])
	}
	return jobs, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
