package spool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/spool"
)

func rec(i int) spool.Record {
	return spool.Record{
		Subject: "stt.events.completed",
		MsgID:   fmt.Sprintf("req-%03d:completed", i),
		Data:    bytes.Repeat([]byte{byte('a' + i%26)}, 50+i),
	}
}

func open(t *testing.T, dir string, cfg spool.Config) *spool.Spool {
	t.Helper()
	s, err := spool.Open(dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// collect replays everything, failing from the failAt-th publish on (0: never).
func collect(t *testing.T, s *spool.Spool, failAt int) ([]spool.Record, error) {
	t.Helper()
	var got []spool.Record
	n, err := s.Replay(context.Background(), func(_ context.Context, r spool.Record) error {
		if failAt > 0 && len(got)+1 >= failAt {
			return errors.New("nats down")
		}
		got = append(got, r)
		return nil
	})
	require.Equal(t, len(got), n)
	return got, err
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	return m
}

func TestAppendReplayInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, spool.Config{})
	var want []spool.Record
	for i := range 5 {
		want = append(want, rec(i))
		require.NoError(t, s.Append(rec(i)))
	}
	require.Equal(t, 5, s.Pending())
	require.Positive(t, s.Bytes())

	got, err := collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, want, got, "same order, subject, msg id and bytes")
	require.Zero(t, s.Pending())
	require.Zero(t, s.Bytes())
	require.Empty(t, segments(t, dir), "a drained segment is deleted")

	// Nothing is replayed twice; new records follow.
	require.NoError(t, s.Append(rec(9)))
	got, err = collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, []spool.Record{rec(9)}, got)
}

func TestAppendRejectsIncompleteRecord(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), spool.Config{})
	require.Error(t, s.Append(spool.Record{Subject: "x", Data: []byte("{}")}))
	require.Error(t, s.Append(spool.Record{MsgID: "x", Data: []byte("{}")}))
	require.Zero(t, s.Pending())
}

// A failed publish stops the replay in order, and the done marker survives a
// restart: only what was not published comes back.
func TestReplayResumesAfterFailureAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir, spool.Config{})
	require.NoError(t, err)
	for i := range 4 {
		require.NoError(t, s.Append(rec(i)))
	}
	got, err := collect(t, s, 3)
	require.ErrorContains(t, err, "nats down")
	require.ErrorContains(t, err, rec(2).MsgID)
	require.Equal(t, []spool.Record{rec(0), rec(1)}, got)
	require.Equal(t, 2, s.Pending())
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Append(rec(7)), spool.ErrClosed)

	s = open(t, dir, spool.Config{})
	require.Equal(t, 2, s.Pending())
	got, err = collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, []spool.Record{rec(2), rec(3)}, got)
	require.Empty(t, segments(t, dir))
}

// Crash simulation: the process dies while writing the last record. Earlier
// records come back intact, the torn one is ignored, and the spool keeps
// working.
func TestTornWriteRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, lastStart int64)
	}{
		{"TruncatedMidPayload", func(t *testing.T, path string, last int64) {
			require.NoError(t, os.Truncate(path, last+8+20))
		}},
		{"TruncatedMidHeader", func(t *testing.T, path string, last int64) {
			require.NoError(t, os.Truncate(path, last+3))
		}},
		{"FlippedByte", func(t *testing.T, path string, last int64) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			b[last+12] ^= 0xff
			require.NoError(t, os.WriteFile(path, b, 0o600))
		}},
		{"ZeroFilledTail", func(t *testing.T, path string, last int64) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			for i := last; i < int64(len(b)); i++ {
				b[i] = 0
			}
			require.NoError(t, os.WriteFile(path, b, 0o600))
		}},
		{"GarbledLength", func(t *testing.T, path string, last int64) {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			b[last+3] = 0x7f // claims far more bytes than the file holds
			require.NoError(t, os.WriteFile(path, b, 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, err := spool.Open(dir, spool.Config{})
			require.NoError(t, err)
			require.NoError(t, s.Append(rec(0)))
			require.NoError(t, s.Append(rec(1)))
			lastStart := s.Bytes()
			require.NoError(t, s.Append(rec(2)))
			require.NoError(t, s.Close())

			segs := segments(t, dir)
			require.Len(t, segs, 1)
			tt.damage(t, segs[0], lastStart)

			s = open(t, dir, spool.Config{})
			require.Equal(t, 2, s.Pending(), "the torn record is not counted")
			require.NoError(t, s.Append(rec(3)))
			require.Len(t, segments(t, dir), 2, "appends after a crash go to a new segment; the old one is not rewritten")
			got, err := collect(t, s, 0)
			require.NoError(t, err)
			require.Equal(t, []spool.Record{rec(0), rec(1), rec(3)}, got)
			require.Empty(t, segments(t, dir))
			require.Zero(t, s.Bytes())
		})
	}
}

func TestFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, spool.Config{MaxBytes: 400})
	var appended int
	var err error
	for i := range 10 {
		if err = s.Append(rec(i)); err != nil {
			break
		}
		appended++
	}
	require.ErrorIs(t, err, spool.ErrFull)
	require.Positive(t, appended)
	require.LessOrEqual(t, s.Bytes(), int64(400))
	require.Equal(t, appended, s.Pending(), "a refused record is not counted")

	got, err := collect(t, s, 0)
	require.NoError(t, err)
	require.Len(t, got, appended, "the refused record left nothing behind")
	require.NoError(t, s.Append(rec(appended)), "draining frees the space")
}

func TestSegmentsRotateAndAreDeleted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir, spool.Config{SegmentBytes: 200})
	require.NoError(t, err)
	var want []spool.Record
	for i := range 10 {
		want = append(want, rec(i))
		require.NoError(t, s.Append(rec(i)))
	}
	before := len(segments(t, dir))
	require.Greater(t, before, 3)
	usedBefore := s.Bytes()

	got, err := collect(t, s, 6)
	require.Error(t, err)
	require.Len(t, got, 5)
	require.Less(t, len(segments(t, dir)), before, "replayed segments are deleted as the replay goes")
	require.Less(t, s.Bytes(), usedBefore)
	require.NoError(t, s.Close())

	s = open(t, dir, spool.Config{SegmentBytes: 200})
	require.Equal(t, 5, s.Pending())
	rest, err := collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, want[5:], rest)
	require.Empty(t, segments(t, dir))
}

func TestDamagedDoneMarkerReplaysAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir, spool.Config{})
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, s.Append(rec(i)))
	}
	_, err = collect(t, s, 2)
	require.Error(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "done"), []byte("garbage, not a marker"), 0o600))

	// Replaying twice is allowed (publishes are idempotent); skipping is not.
	s = open(t, dir, spool.Config{})
	require.Equal(t, 3, s.Pending())
	got, err := collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, []spool.Record{rec(0), rec(1), rec(2)}, got)
}

func TestOneProcessPerDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir, spool.Config{})
	require.NoError(t, err)
	_, err = spool.Open(dir, spool.Config{})
	require.ErrorContains(t, err, "in use")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	open(t, dir, spool.Config{})
}

func TestConcurrentAppendAndReplay(t *testing.T) {
	t.Parallel()
	const total = 200
	dir := t.TempDir()
	s := open(t, dir, spool.Config{SegmentBytes: 1000})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range total {
			if err := s.Append(rec(i)); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
		}
	})
	var got []string
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		_, err := s.Replay(context.Background(), func(_ context.Context, r spool.Record) error {
			got = append(got, r.MsgID)
			return nil
		})
		require.NoError(t, err)
	}
	want := make([]string, total)
	for i := range want {
		want[i] = rec(i).MsgID
	}
	require.Equal(t, want, got, "every record once, in order")
	require.Zero(t, s.Pending())
	require.Empty(t, segments(t, dir))
}

func TestReplayStopsWithContext(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), spool.Config{})
	require.NoError(t, s.Append(rec(0)))
	require.NoError(t, s.Append(rec(1)))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := s.Replay(ctx, func(context.Context, spool.Record) error {
		cancel()
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, n)
	require.Equal(t, 1, s.Pending())
}

// A crash can undo a segment's deletion (the directory was not synced) or
// leave a segment created but never written. Neither brings records back.
func TestLeftoversFromACrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := spool.Open(dir, spool.Config{SegmentBytes: 150})
	require.NoError(t, err)
	for i := range 4 {
		require.NoError(t, s.Append(rec(i)))
	}
	segs := segments(t, dir)
	require.Len(t, segs, 4)
	first, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	got, err := collect(t, s, 3)
	require.Error(t, err)
	require.Len(t, got, 2)
	require.NoError(t, s.Close())

	require.NoError(t, os.WriteFile(segs[0], first, 0o600))                                      // deletion lost
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000000100.seg"), nil, 0o600)) // never written

	s = open(t, dir, spool.Config{SegmentBytes: 150})
	require.Equal(t, 2, s.Pending())
	require.Equal(t, segs[2:], segments(t, dir), "the replayed and the empty segments are gone")
	require.NoError(t, s.Append(rec(4)))
	got, err = collect(t, s, 0)
	require.NoError(t, err)
	require.Equal(t, []spool.Record{rec(2), rec(3), rec(4)}, got)
}
