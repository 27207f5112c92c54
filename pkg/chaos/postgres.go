package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scribeq/scribeq/pkg/localpg"
)

// TerminateBackends ends every Postgres session on the database but the
// harness's own (pg_terminate_backend), as an administrator or a failover
// would, and returns how many it ended.
func TerminateBackends(ctx context.Context, db DB) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> $1`, HarnessApp).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("chaos: terminate backends: %w", err)
	}
	return n, nil
}

// Postgres is a private server a scenario may crash: the shared test
// server (pgtest) serves other tests and must never be stopped.
type Postgres struct {
	*localpg.Cluster
	bin string
	log string
}

// StartPostgres starts a throwaway cluster (pkg/localpg) for t, stopped and
// removed when t ends. Its database is empty: the sink migrates it.
func StartPostgres(t testing.TB, ctx context.Context) *Postgres {
	t.Helper()
	bin, err := localpg.BinDir()
	if err != nil {
		t.Fatalf("chaos: private postgres: %v", err)
	}
	// Directly under the temporary folder: when the tests run as root, the
	// postgres user must be able to reach the data directory.
	dir, err := os.MkdirTemp("", "scribeq-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := localpg.Start(ctx, dir, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("chaos: private postgres: %v", err)
	}
	p := &Postgres{Cluster: c, bin: bin, log: filepath.Join(dir, "postgres.log")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("chaos: stop private postgres: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return p
}

// Crash stops the server with `pg_ctl stop -m immediate`: no checkpoint,
// sessions cut, crash recovery at the next start, as after a power cut of
// the server process (the OS keeps what was written).
func (p *Postgres) Crash(ctx context.Context) error {
	return p.pgctl(ctx, "stop", "-D", p.Dir, "-m", "immediate", "-w", "-t", "60")
}

// Restart starts the server again on the same port, so the workers' URLs
// still point at it, and waits until it accepts connections.
func (p *Postgres) Restart(ctx context.Context) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories='' -c fsync=on", p.Port)
	return p.pgctl(ctx, "start", "-D", p.Dir, "-w", "-t", "120", "-l", p.log, "-o", opts)
}

func (p *Postgres) pgctl(ctx context.Context, args ...string) error {
	path := filepath.Join(p.bin, "pg_ctl")
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// initdb refuses root, so localpg runs the server as postgres.
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: pg_ctl %s: %w: %s\n%s", args[0], err, strings.TrimSpace(string(out)), tailFile(p.log, 20))
	}
	return nil
}

// String names the server for messages.
func (p *Postgres) String() string { return "postgres on port " + strconv.Itoa(p.Port) }
