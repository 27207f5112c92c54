package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/scribeq/scribeq/pkg/audio"
)

// DemoCmd runs `dev` in this process and drives it with the real CLI
// commands as child processes: submit --wait, status, show.
type DemoCmd struct {
	DevCmd `embed:""`
	Audio  string        `name:"audio" default:"testdata/audio" help:"Folder of recordings to transcribe."`
	Wait   time.Duration `name:"wait" default:"5m" help:"How long to wait for every job to finish."`
}

func (c *DemoCmd) Run(ctx context.Context, g *Globals) error {
	log := g.logger()
	if _, err := os.Stat(c.Audio); err != nil {
		return fmt.Errorf("demo: recordings folder: %w", err)
	}
	started := time.Now()
	p, stop, err := c.start(ctx, g, log)
	if err != nil {
		return err
	}
	runErr := c.drive(ctx, g, p.NatsURL)
	if err := stop(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		fmt.Printf("\ndemo finished in %s\n", time.Since(started).Round(100*time.Millisecond))
	}
	return runErr
}

func (c *DemoCmd) drive(ctx context.Context, g *Globals, natsURL string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find own binary: %w", err)
	}
	env := append(os.Environ(), "SCRIBEQ_NATS_URL="+natsURL, "SCRIBEQ_DATA_DIR="+g.DataDir, "SCRIBEQ_LOG_LEVEL=warn")
	cmd := func(args ...string) error {
		fmt.Printf("\n$ scribeq %s\n", joinArgs(args))
		x := exec.CommandContext(ctx, self, args...)
		x.Env, x.Stdout, x.Stderr = env, os.Stdout, os.Stderr
		return x.Run()
	}
	// exit code 3 means "some were skipped or already submitted": a second
	// demo run re-submits the same files, which is the point of ids.
	entries, err := os.ReadDir(c.Audio)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	args := []string{"submit", "--wait", "--timeout", c.Wait.String(), "--batch", "demo"}
	for _, e := range entries {
		if !e.IsDir() && audio.IsMediaExt(e.Name()) {
			args = append(args, filepath.Join(c.Audio, e.Name()))
		}
	}
	if err := cmd(args...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			return fmt.Errorf("demo: submit: %w", err)
		}
	}
	if err := cmd("status"); err != nil {
		return fmt.Errorf("demo: status: %w", err)
	}
	if len(args) > 6 {
		if err := cmd("show", args[6]); err != nil {
			return fmt.Errorf("demo: show: %w", err)
		}
	}
	return nil
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}
