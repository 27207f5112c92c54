package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func newProc(t *testing.T, name, script string) *Proc {
	t.Helper()
	dir := t.TempDir()
	return &Proc{
		Name: name, Path: "/bin/sh", Args: []string{"-c", script},
		Env: []string{"PATH=" + os.Getenv("PATH")}, Dir: dir, Log: filepath.Join(dir, name+".log"),
	}
}

// procState reads the one-letter state from /proc/<pid>/stat (T = stopped).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	require.NoError(t, err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return fields[0]
}

func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Until(ctx, "process state "+want, 5*time.Millisecond, func(context.Context) (bool, error) {
		return procState(t, pid) == want, nil
	}))
}

func TestProcKillPauseRestartStop(t *testing.T) {
	t.Parallel()
	p := newProc(t, "sleeper", "echo hello; exec sleep 1000")
	require.NoError(t, p.Start())
	require.Error(t, p.Start(), "a running process cannot be started twice")
	require.True(t, p.Running())
	pid := p.PID()

	require.NoError(t, p.Pause())
	waitState(t, pid, "T")
	require.NoError(t, p.Resume())
	waitState(t, pid, "S")

	require.NoError(t, p.Kill())
	require.False(t, p.Running())
	require.NoError(t, p.Restart())
	require.True(t, p.Running())
	require.NotEqual(t, pid, p.PID())
	require.Equal(t, 2, p.Starts())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Until(ctx, "second run logs", 5*time.Millisecond, func(context.Context) (bool, error) {
		return strings.Count(p.Tail(100), "hello") == 2, nil
	}))

	// A paused process still stops on SIGTERM: it is continued first.
	require.NoError(t, p.Pause())
	killed, err := p.Stop(10 * time.Second)
	require.NoError(t, err)
	require.False(t, killed)
	require.False(t, p.Running())
	require.Empty(t, p.Unexpected(), "every exit was the harness's doing")

	log := p.Tail(100)
	require.Equal(t, 2, strings.Count(log, "hello"), log)
	require.Contains(t, log, "=== chaos: start #2 of sleeper")
	require.Contains(t, log, "killed by signal 9")
}

func TestProcUnexpectedExitAndStubbornStop(t *testing.T) {
	t.Parallel()
	p := newProc(t, "crasher", "exit 3")
	require.NoError(t, p.Start())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Until(ctx, "crasher exits", 5*time.Millisecond, func(context.Context) (bool, error) {
		return !p.Running(), nil
	}))
	u := p.Unexpected()
	require.Len(t, u, 1)
	require.Contains(t, u[0], "exit status 3")

	// Ignoring SIGTERM (children inherit the ignore) earns a SIGKILL for
	// the whole group.
	s := newProc(t, "stubborn", `trap "" TERM; echo armed; while :; do sleep 0.05; done`)
	require.NoError(t, s.Start())
	require.NoError(t, Until(ctx, "trap armed", 5*time.Millisecond, func(context.Context) (bool, error) {
		return strings.Contains(s.Tail(5), "armed"), nil
	}))
	killed, err := s.Stop(300 * time.Millisecond)
	require.NoError(t, err)
	require.True(t, killed)
	require.False(t, s.Running())
	require.Empty(t, s.Unexpected())
}

func TestUntil(t *testing.T) {
	t.Parallel()
	n := 0
	require.NoError(t, Until(context.Background(), "third call", time.Millisecond, func(context.Context) (bool, error) {
		n++
		return n == 3, nil
	}))
	require.Equal(t, 3, n)

	boom := errors.New("boom")
	require.ErrorIs(t, Until(context.Background(), "x", time.Millisecond, func(context.Context) (bool, error) {
		return false, boom
	}), boom)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := Until(ctx, "never", time.Millisecond, func(context.Context) (bool, error) { return false, nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "never")
}

func TestMakeLoadIsDistinctAndDeterministic(t *testing.T) {
	t.Parallel()
	a, err := MakeLoad(filepath.Join(t.TempDir(), "a"), 20, 7)
	require.NoError(t, err)
	b, err := MakeLoad(filepath.Join(t.TempDir(), "b"), 20, 7)
	require.NoError(t, err)
	require.Len(t, a.Text, 20)
	seen := map[string]bool{}
	for path, text := range a.Text {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.False(t, seen[string(data)], "two files with the same bytes would be one job")
		seen[string(data)] = true
		h, err := audio.ReadWAVHeader(bytes.NewReader(data))
		require.NoError(t, err)
		require.Greater(t, h.Duration, 0.2)
		require.NotEmpty(t, text)
		require.Equal(t, text, b.Text[filepath.Join(b.Dir, filepath.Base(path))], "same seed, same load")
	}
}

func TestParseSubmitOutput(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "submit.out")
	out := "queued            /l/rec-000001.wav  job 11111111-aaaa\n" +
		"queued            /l/rec-000002.wav  job 22222222-bbbb  (finished an interrupted submit)\n" +
		"skipped           /l/notes.txt  (not an audio or video file)\n" +
		"2 queued (0.0 MB), 0 already submitted, 1 skipped, 0 errors\n"
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	jobs, bad, err := parseSubmitOutput(path)
	require.NoError(t, err)
	require.Equal(t, []Submitted{{"11111111-aaaa", "/l/rec-000001.wav"}, {"22222222-bbbb", "/l/rec-000002.wav"}}, jobs)
	require.Len(t, bad, 1)
	require.Contains(t, bad[0], "notes.txt")
}

func TestLedgerFigures(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ours := map[string]string{"a": "", "b": ""}
	dups, accepted, refused, undelivered := ledgerFigures([]emulator.Call{
		{JobID: "a", Status: 200, Accepted: true, At: t0.Add(2 * time.Second), Delivery: "delivered"},
		// Billed though its answer was lost.
		{JobID: "a", Status: 200, Accepted: true, AnswerLost: true, At: t0, Delivery: "failed"},
		{JobID: "a", Status: 500, At: t0.Add(time.Second)}, // refused: not billed
		{JobID: "b", Status: 200, Accepted: true, At: t0, Delivery: "delivered"},
		{JobID: "b", Status: 429, At: t0},
		{JobID: "other", Status: 200, Accepted: true, At: t0}, // another run's job
		{JobID: "other", Status: 200, Accepted: true, At: t0},
	}, ours)
	require.Equal(t, []DuplicateCall{{JobID: "a", At: []time.Time{t0, t0.Add(2 * time.Second)}}}, dups)
	require.Equal(t, 3, accepted)
	require.Equal(t, 2, refused)
	require.Equal(t, 1, undelivered)
}

func TestFiguresLineLinesUpWithHeader(t *testing.T) {
	t.Parallel()
	f := Figures{Scenario: "kill_submitter", Jobs: 10000, Completed: 9990, Failed: 10, Lost: 0,
		DuplicateRows: 0, DuplicateConvertCalls: 2, Seconds: 123.45}
	h, l := Header(), f.Line()
	require.Equal(t, len(h), len(l))
	require.Equal(t, []string{"scenario", "jobs", "completed", "failed", "lost", "duplicate_rows", "duplicate_convert_calls", "seconds"}, strings.Fields(h))
	require.Equal(t, []string{"kill_submitter", "10000", "9990", "10", "0", "0", "2", "123.5"}, strings.Fields(l))
	// Every value but the name ends where its column's name ends.
	require.Equal(t, fieldEnds(h)[1:], fieldEnds(l)[1:])
}

// fieldEnds returns the index just past each space-separated field.
func fieldEnds(s string) []int {
	var ends []int
	for i := range len(s) {
		if s[i] != ' ' && (i+1 == len(s) || s[i+1] == ' ') {
			ends = append(ends, i+1)
		}
	}
	return ends
}

// Check reads the figures from the schema the sink writes.
func TestCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDB(t))
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, `
		INSERT INTO jobs (job_id, request_id, state, state_rank, error) VALUES
			('ok', 'r-ok', 'completed', 4, NULL),
			('swapped', 'r-swapped', 'completed', 4, NULL),
			('twice', 'r-twice-2', 'completed', 4, NULL),
			('bad', NULL, 'failed', 3, 'invalid audio'),
			('stuck', 'r-stuck', 'submitted', 2, NULL);
		INSERT INTO transcripts (request_id, job_id, text, payload) VALUES
			('r-ok', 'ok', 'text of ok', '{}'),
			('r-swapped', 'swapped', 'text of ok', '{}'),
			('r-twice-1', 'twice', 'text of twice', '{}'),
			('r-twice-2', 'twice', 'text of twice', '{}')`)
	require.NoError(t, err)
	load := &Load{Text: map[string]string{}}
	var jobs []Submitted
	for _, id := range []string{"ok", "swapped", "twice", "bad", "stuck", "missing"} {
		jobs = append(jobs, Submitted{JobID: id, Path: "/l/" + id})
		load.Text["/l/"+id] = "text of " + id
	}
	t0 := time.Now()
	ledger := []emulator.Call{
		{JobID: "twice", Status: 200, Accepted: true, At: t0},
		{JobID: "twice", Status: 200, Accepted: true, At: t0.Add(time.Minute)},
		{JobID: "ok", Status: 200, Accepted: true, At: t0},
	}
	n, err := Terminal(ctx, conn, []string{"ok", "bad", "stuck", "missing"})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	r, err := Check(ctx, conn, ledger, jobs, load)
	require.NoError(t, err)
	require.Equal(t, Figures{Jobs: 6, Completed: 3, Failed: 1, Lost: 2, DuplicateRows: 1, DuplicateConvertCalls: 1}, r.Figures)
	require.Equal(t, []string{"swapped"}, r.Mismatched)
	require.Equal(t, map[string]string{"stuck": "submitted", "missing": "missing"}, r.NotTerminal)
	require.Equal(t, map[string]int{"invalid audio": 1}, r.FailReasons)
	require.Contains(t, r.Summary(), "job twice billed 2 times")
}

// Each forgery is what it claims: the signature check refuses all but the
// two that carry a valid signature, and those are oversized or not JSON.
func TestForgeries(t *testing.T) {
	t.Parallel()
	now := time.Now()
	v := &elevenlabs.Verifier{Secrets: []string{webhookSecret}, Now: func() time.Time { return now }}
	for _, k := range Forgeries {
		body, sig := Forge(k, 7, "job-1", now, 4096)
		err := v.Verify(sig, body)
		switch k {
		case Oversized:
			require.NoError(t, err, k)
			require.Greater(t, len(body), 4096, k)
		case SignedNotJSON:
			require.NoError(t, err, k)
			require.False(t, json.Valid(body), k)
		default:
			require.Error(t, err, k)
		}
		if k != SignedNotJSON {
			wh, err := elevenlabs.ParseWebhook(body)
			require.NoError(t, err, "%s must look like a real webhook but for its signature", k)
			require.True(t, strings.HasPrefix(wh.Data.RequestID, ForgedPrefix), k)
			require.Equal(t, "job-1", elevenlabs.MetadataString(wh.Data.WebhookMetadata, "job_id"), k)
		}
	}
	// The genuine article passes, so the refusals above are the forgeries'.
	body, _ := Forge(NoSignature, 8, "job-1", now, 0)
	require.NoError(t, v.Verify(elevenlabs.Sign(webhookSecret, now, body), body))
}
