// Package localpg runs a throwaway Postgres cluster from the locally
// installed server binaries (initdb, pg_ctl), for `scribeq dev`, the demo and
// tests when no DATABASE_URL is given. The cluster listens on a free loopback
// port with trust authentication, so it must never hold data worth securing.
//
// When the process runs as root the server runs as the `postgres` OS user
// (initdb refuses root), so the data directory must be reachable by that user.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// Database is the database Start creates and Cluster.URL points at.
	Database = "scribeq"
	// Superuser is the cluster's superuser role (trust auth, no password).
	Superuser = "postgres"

	// osUser runs the server when this process is root.
	osUser = "postgres"
	// pgctlTimeout bounds pg_ctl's own wait for start and stop (-t).
	pgctlTimeout = 60
	// startAttempts covers losing the free port to another process between
	// picking it and the server binding it.
	startAttempts = 3
	// maxSocketPath is what fits in sun_path (108 bytes) with the server's
	// ".s.PGSQL.<port>.lock" suffix; beyond it Postgres refuses to start.
	maxSocketPath = 107
)

// binRoot holds one directory per installed major version (Debian layout).
const binRoot = "/usr/lib/postgresql"

// Cluster is a running local Postgres server.
type Cluster struct {
	// Dir is the data directory; it also holds the unix socket and the
	// server log (postgres.log).
	Dir string
	// Port is the loopback TCP port the server listens on.
	Port int
	// URL connects to the scribeq database as the superuser.
	URL string

	bin    string
	runAs  bool // run commands as osUser via runuser
	logger *slog.Logger
}

// BinDir returns the directory holding initdb and pg_ctl: the newest
// /usr/lib/postgresql/<version>/bin, else the directory of pg_ctl on PATH.
func BinDir() (string, error) {
	if dir := newestVersionDir(binRoot); dir != "" {
		return dir, nil
	}
	pgctl, err := exec.LookPath("pg_ctl")
	if err == nil {
		dir := filepath.Dir(pgctl)
		if isExecutable(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
	return "", errors.New("localpg: no PostgreSQL server binaries (initdb, pg_ctl) in " +
		binRoot + "/*/bin or on PATH; install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL")
}

// newestVersionDir returns root/<newest version>/bin when it holds both
// binaries, comparing versions numerically (10 is newer than 9.6).
func newestVersionDir(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	type cand struct {
		dir string
		ver []int
	}
	var cands []cand
	for _, e := range entries {
		ver, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		dir := filepath.Join(root, e.Name(), "bin")
		if isExecutable(filepath.Join(dir, "pg_ctl")) && isExecutable(filepath.Join(dir, "initdb")) {
			cands = append(cands, cand{dir, ver})
		}
	}
	if len(cands) == 0 {
		return ""
	}
	best := slices.MaxFunc(cands, func(a, b cand) int { return slices.Compare(a.ver, b.ver) })
	return best.dir
}

func parseVersion(s string) ([]int, bool) {
	var ver []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, false
		}
		ver = append(ver, n)
	}
	return ver, true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start initialises dir (unless it already holds a cluster), starts the
// server on a free loopback port and makes sure the scribeq database exists.
// Calling it again on the same dir reuses the data. A server left running by
// an earlier run that crashed is stopped first; a stale postmaster.pid is
// removed. Stop the cluster with Stop.
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Cluster, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("localpg: data dir: %w", err)
	}
	// pg_ctl hands the directory to /bin/sh inside double quotes.
	if strings.ContainsAny(dir, "\"$`\\\n") {
		return nil, fmt.Errorf("localpg: data dir %q: must not contain quotes, $, ` or \\", dir)
	}
	c := &Cluster{Dir: dir, bin: bin, runAs: os.Geteuid() == 0, logger: logger}
	if err := c.prepareDir(ctx); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.clearStale(ctx); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.ensureDatabase(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	c.URL = fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, Database)
	logger.Info("local postgres started", "dir", dir, "port", c.Port)
	return c, nil
}

// Stop shuts the server down (fast mode: running transactions are rolled
// back, data is flushed). Stopping a cluster that is not running is not an
// error.
func (c *Cluster) Stop(ctx context.Context) error {
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.Dir, "-m", "fast", "-w", "-t", strconv.Itoa(pgctlTimeout))
	if err != nil {
		if notRunning(out) {
			return nil
		}
		return fmt.Errorf("localpg: stop %s: %w: %s", c.Dir, err, strings.TrimSpace(string(out)))
	}
	c.logger.Info("local postgres stopped", "dir", c.Dir)
	return nil
}

// ErrUnreachableDir means the server's OS user cannot reach the data
// directory, typically because a parent such as /root is private.
var ErrUnreachableDir = errors.New("data directory not reachable by the postgres user")

// prepareDir creates the data directory and, as root, hands it to osUser.
func (c *Cluster) prepareDir(ctx context.Context) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("localpg: create data dir: %w", err)
	}
	if !c.runAs {
		return nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return fmt.Errorf("localpg: running as root needs a %q OS user to run the server: %w", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(c.Dir, uid, gid); err != nil {
		return fmt.Errorf("localpg: hand data dir to %s: %w", osUser, err)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return fmt.Errorf("localpg: running as root needs runuser (util-linux) to run the server as %s: %w", osUser, err)
	}
	// A parent such as /root (0700) hides the directory from the server.
	cmd := exec.CommandContext(ctx, "runuser", "-u", osUser, "--", "test", "-w", c.Dir, "-a", "-x", c.Dir)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localpg: data dir %s is not reachable by the %s user (is a parent directory private?); "+
			"use a directory under /tmp or /var/lib: %w", c.Dir, osUser, errors.Join(ErrUnreachableDir, err))
	}
	return nil
}

func (c *Cluster) initialised() bool {
	_, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION"))
	return err == nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	if c.initialised() {
		return nil
	}
	out, err := c.run(ctx, "initdb",
		"-D", c.Dir, "-U", Superuser, "-E", "UTF8", "--locale=C",
		// Loopback and unix socket only (listen_addresses below); trust keeps
		// a throwaway cluster password-free.
		"--auth-local=trust", "--auth-host=trust")
	if err != nil {
		return fmt.Errorf("localpg: initdb %s: %w: %s", c.Dir, err, strings.TrimSpace(string(out)))
	}
	c.logger.Info("initialised local postgres", "dir", c.Dir)
	return nil
}

// clearStale deals with a postmaster.pid left by an earlier run: if that
// server is still running on this directory it is stopped (its port and
// owner are unknown to us), otherwise the file is removed.
func (c *Cluster) clearStale(ctx context.Context) error {
	pidFile := filepath.Join(c.Dir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("localpg: read %s: %w", pidFile, err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if pid > 0 && c.servesDir(ctx, pid) {
		c.logger.Warn("a postgres server from an earlier run is still running; stopping it", "pid", pid, "dir", c.Dir)
		return c.Stop(ctx)
	}
	c.logger.Warn("removing stale postmaster.pid", "pid", pid, "dir", c.Dir)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("localpg: remove stale %s: %w", pidFile, err)
	}
	return nil
}

// servesDir reports whether pid is a live postmaster for c.Dir. The
// postmaster's working directory is its data directory, which tells it apart
// from an unrelated process that reused the pid. Without /proc, pg_ctl
// status decides.
func (c *Cluster) servesDir(ctx context.Context, pid int) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err == nil {
		want, werr := filepath.EvalSymlinks(c.Dir)
		return werr == nil && cwd == want
	}
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat("/proc/self"); serr == nil {
			return false // /proc works and the process is gone
		}
	}
	_, err = c.run(ctx, "pg_ctl", "status", "-D", c.Dir)
	return err == nil
}

func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.Dir, "postgres.log")
	sockDir := c.Dir
	if len(sockDir)+len("/.s.PGSQL.65535.lock") > maxSocketPath {
		// TCP is all scribeq needs; a path this long would stop the server.
		c.logger.Info("data dir path too long for a unix socket; TCP only", "dir", c.Dir)
		sockDir = ""
	}
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return err
		}
		logStart := fileSize(logFile)
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=on",
			port, shellQuote(sockDir))
		out, err := c.run(ctx, "pg_ctl", "start", "-D", c.Dir, "-w", "-t", strconv.Itoa(pgctlTimeout),
			"-l", logFile, "-o", opts)
		if err == nil {
			c.Port = port
			return nil
		}
		logged := readFrom(logFile, logStart)
		lastErr = fmt.Errorf("localpg: start server in %s: %w: %s\n%s", c.Dir, err,
			strings.TrimSpace(string(out)), strings.TrimSpace(logged))
		if !strings.Contains(logged, "could not bind") && !strings.Contains(logged, "already in use") {
			break
		}
		c.logger.Warn("port taken before the server bound it; trying another", "port", port)
	}
	return lastErr
}

func (c *Cluster) ensureDatabase(ctx context.Context) error {
	admin := fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", Superuser, c.Port)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return fmt.Errorf("localpg: connect to new server: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(cctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("localpg: look up database %s: %w", Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
		return fmt.Errorf("localpg: create database %s: %w", Database, err)
	}
	return nil
}

// run runs one of the server binaries, as osUser when this process is root.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.runAs {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", osUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// pg_ctl detaches the server and sends its output to the log, but never
	// let a stray inherited pipe hang us.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

func notRunning(pgctlOutput []byte) bool {
	return strings.Contains(string(pgctlOutput), "Is server running?")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shellQuote quotes s for /bin/sh, which pg_ctl runs the server through.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns what was appended to path after offset (at most 4 KiB).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b)
}
