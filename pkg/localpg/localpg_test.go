package localpg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// dataDir returns a fresh directory the server user can reach. t.TempDir
// nests it in a root-only (0700) parent, which the postgres user cannot
// enter when the tests run as root.
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localpg-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func start(t *testing.T, dir string) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func connect(t *testing.T, url string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func TestStartStopReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := dataDir(t)

	c := start(t, dir)
	require.Contains(t, c.URL, "127.0.0.1:"+strconv.Itoa(c.Port)+"/scribeq")
	conn, err := connect(t, c.URL)
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.Equal(t, Database, db)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	require.NoError(t, err)
	var fsync string
	require.NoError(t, conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "on", fsync)
	require.NoError(t, conn.Close(ctx))

	require.NoError(t, c.Stop(ctx))
	_, err = connect(t, c.URL)
	require.Error(t, err, "server still answers after Stop")
	require.NoError(t, c.Stop(ctx), "stopping a stopped cluster")

	again := start(t, dir)
	conn, err = connect(t, again.URL)
	require.NoError(t, err)
	var v string
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "still here", v)
}

// A run that died without Stop leaves its server running; the next Start on
// the same directory must take over rather than fail on postmaster.pid.
func TestStartAfterCrashedRun(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	start(t, dir)
	orphanPid := postmasterPid(t, dir)

	c := start(t, dir)
	_, err := connect(t, c.URL)
	require.NoError(t, err)
	require.NotEqual(t, orphanPid, postmasterPid(t, dir))
	// pg_ctl stop returns once postmaster.pid is gone, a moment before the
	// process itself has exited.
	require.Eventually(t, func() bool { return syscall.Kill(orphanPid, 0) != nil },
		10*time.Second, 10*time.Millisecond, "the orphaned server should have been stopped")
}

func postmasterPid(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(first)
	require.NoError(t, err)
	return pid
}

func TestStartWithStalePidFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := dataDir(t)
	c := start(t, dir)
	require.NoError(t, c.Stop(ctx))

	// A pid that certainly belongs to no postmaster: a process that exited.
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	stale := strconv.Itoa(gone.Process.Pid) + "\n" + dir + "\n1700000000\n5432\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600))

	again := start(t, dir)
	_, err := connect(t, again.URL)
	require.NoError(t, err)
}

func TestBinDir(t *testing.T) {
	t.Parallel()
	dir, err := BinDir()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "pg_ctl"))
	require.FileExists(t, filepath.Join(dir, "initdb"))
}

func TestNewestVersionDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"9.6", "10", "notaversion", "16"} {
		bin := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(bin, 0o755))
		for _, name := range []string{"pg_ctl", "initdb"} {
			if v == "16" && name == "initdb" {
				continue // incomplete install: must be ignored
			}
			require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755))
		}
	}
	require.Equal(t, filepath.Join(root, "10", "bin"), newestVersionDir(root))
	require.Empty(t, newestVersionDir(filepath.Join(root, "missing")))
}
