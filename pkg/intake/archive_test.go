package intake_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestArchives(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	jan, feb, mar := wav(t, 1, 11), wav(t, 1.5, 12), wav(t, 0.5, 13)
	zipPath := writeZip(t, filepath.Join(dir, "calls.zip"), []entry{
		{name: "rec", dir: true},
		{name: "rec/2024", dir: true},
		{name: "rec/2024/jan/a.wav", data: jan},
		{name: "rec/2024/feb/b.WAV", data: feb},
		{name: "rec/readme.pdf", data: pdf},
		{name: "rec/fake.mp3", data: pdf},
		{name: "rec/empty.wav"},
		{name: "rec/inner.zip", data: []byte("PK")},
		{name: "__MACOSX/rec/2024/jan/._a.wav", data: []byte("resource fork")},
		{name: "rec/.DS_Store", data: []byte("junk")},
	})
	tgzPath := writeTarGz(t, filepath.Join(dir, "more.tgz"), []entry{
		{name: "./2025", dir: true},
		{name: "./2025/q1/deep/c.wav", data: mar},
		{name: "./2025/notes.txt", data: []byte("hello")},
		{name: "./2025/link.wav", link: "q1/deep/c.wav"},
		{name: "./2025/noext", data: wav(t, 1, 14)},
	})

	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{zipPath, tgzPath}}, nil)
	require.NoError(t, err)
	require.Equal(t, 4, plan.Totals.Items)
	require.Equal(t, int64(len(jan)+len(feb)+len(mar)+len(wav(t, 1, 14))), plan.Totals.UploadBytes)
	res, err := plan.Queue(ctx, nil)
	require.NoError(t, err)
	got := byWhere(t, res)
	require.Len(t, got, 10, "%v", res)

	want := map[string]struct {
		status intake.Status
		reason string
	}{
		zipPath + "!rec/2024/jan/a.wav": {intake.Queued, ""},
		zipPath + "!rec/2024/feb/b.WAV": {intake.Queued, ""},
		zipPath + "!rec/readme.pdf":     {intake.Skipped, "not audio or video (.pdf file, not read)"},
		zipPath + "!rec/fake.mp3":       {intake.Skipped, "not audio or video (looks like pdf)"},
		zipPath + "!rec/empty.wav":      {intake.Skipped, "empty file"},
		zipPath + "!rec/inner.zip":      {intake.Skipped, "an archive inside an archive is not opened"},
		tgzPath + "!2025/q1/deep/c.wav": {intake.Queued, ""},
		tgzPath + "!2025/notes.txt":     {intake.Skipped, "not audio or video (.txt file, not read)"},
		tgzPath + "!2025/link.wav":      {intake.Skipped, "a link inside an archive is not followed"},
		tgzPath + "!2025/noext":         {intake.Queued, ""},
	}
	for src, w := range want {
		require.Equal(t, w.status, got[src].Status, "%s: %+v", src, got[src])
		require.Equal(t, w.reason, got[src].Reason, src)
	}

	// The job remembers archive and entry; the object holds the entry's bytes.
	j := jobByID(t, q, got[tgzPath+"!2025/q1/deep/c.wav"].JobID)
	require.Equal(t, tgzPath, j.Source.Archive)
	require.Equal(t, "2025/q1/deep/c.wav", j.Source.Entry)
	require.Equal(t, "c.wav", j.Source.Name)
	require.Equal(t, tgzPath+"!2025/q1/deep/c.wav", j.Source.Path)
	require.Equal(t, "wav", j.Source.Format)
	require.InDelta(t, 0.5, j.Source.DurationSecs, 0.01)
	require.Equal(t, mar, object(t, q, j.Source.Object))
	jb := jobByID(t, q, got[zipPath+"!rec/2024/feb/b.WAV"].JobID)
	require.Equal(t, zipPath, jb.Source.Archive)
	require.Equal(t, feb, object(t, q, jb.Source.Object))
	require.Equal(t, plan.BatchID, jb.BatchID)
	require.Equal(t, "calls.zip "+time.Now().Format("2006-01-02"), jb.BatchName)

	// The same archives again: nothing new, and the plan says so.
	again, err := in.Scan(ctx, intake.Request{Sources: []string{tgzPath, zipPath}}, nil)
	require.NoError(t, err)
	require.Zero(t, again.Totals.Items)
	require.Equal(t, 4, again.Totals.Counts[intake.AlreadySubmitted])
	res, err = again.Queue(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 4, statuses(res)[intake.AlreadySubmitted])
	require.Len(t, jobs(t, q), 4, "nothing new on JOBS")
	require.Len(t, queuedEvents(t, q), 4)
}

// A manifest row can name an archive: its entries get the row's options,
// and Include/Exclude apply to entry paths.
func TestArchiveFromManifestWithFilters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "in", "calls.zip"), []entry{
		{name: "2024/a.wav", data: wav(t, 1, 1)},
		{name: "2024/skip/b.wav", data: wav(t, 1, 2)},
		{name: "2023/c.wav", data: wav(t, 1, 3)},
		{name: "2024/notes.txt", data: []byte("x")},
	})
	m := writeFile(t, filepath.Join(dir, "in", "list.jsonl"), []byte(`{"path":"calls.zip","language":"nl","metadata":{"box":"7"}}`+"\n"))
	res, err := intake.New(q, nil).Submit(ctx, intake.Request{
		Sources: []string{m}, Include: []string{"2024/**"}, Exclude: []string{"**/skip/**"},
	}, nil)
	require.NoError(t, err)
	got := byWhere(t, res)
	require.Len(t, got, 2, "%v", res)
	r := got[m+":1 "+filepath.Join(dir, "in", "calls.zip")+"!2024/a.wav"]
	require.Equal(t, intake.Queued, r.Status, "%v", res)
	j := jobByID(t, q, r.JobID)
	require.Equal(t, "nl", j.Options.Language)
	require.Equal(t, map[string]string{"box": "7"}, j.Metadata)
	require.Equal(t, intake.Skipped, got[m+":1 "+filepath.Join(dir, "in", "calls.zip")+"!2024/notes.txt"].Status)
}

// An interrupted upload from a tar archive, run again, completes exactly
// once, and the tar is read only as far as needed.
func TestTarInterruptedThenResumed(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	big := wav(t, 20, 1) // 640 kB: several object chunks
	tgz := writeTarGz(t, filepath.Join(dir, "x.tar.gz"), []entry{
		{name: "a.wav", data: wav(t, 1, 2)},
		{name: "b.wav", data: big},
		{name: "c.wav", data: wav(t, 1, 3)},
	})
	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{tgz}}, nil)
	require.NoError(t, err)
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := plan.Queue(qctx, func(p intake.Progress) {
		if strings.HasSuffix(p.Current, "b.wav") && p.Result == nil && p.Bytes > int64(len(big)/2) {
			cancel() // mid-upload of b.wav
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	got := byWhere(t, res)
	require.Equal(t, intake.Queued, got[tgz+"!a.wav"].Status)
	require.Equal(t, intake.Failed, got[tgz+"!b.wav"].Status)
	require.Contains(t, got[tgz+"!b.wav"].Reason, "interrupted")
	require.Equal(t, intake.Failed, got[tgz+"!c.wav"].Status)
	require.Len(t, jobs(t, q), 1)
	// The partial upload was removed, not left as an object.
	sum := sha256.Sum256(big)
	_, err = q.Audio.GetInfo(ctx, hex.EncodeToString(sum[:]))
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)

	res, err = in.Submit(ctx, intake.Request{Sources: []string{tgz}}, nil)
	require.NoError(t, err)
	got = byWhere(t, res)
	require.Equal(t, intake.AlreadySubmitted, got[tgz+"!a.wav"].Status)
	require.Equal(t, intake.Queued, got[tgz+"!b.wav"].Status)
	require.Equal(t, "finished an interrupted submit", got[tgz+"!b.wav"].Reason)
	require.Equal(t, intake.Queued, got[tgz+"!c.wav"].Status)
	require.Empty(t, got[tgz+"!c.wav"].Reason)
	js := jobs(t, q)
	require.Len(t, js, 3)
	require.Len(t, queuedEvents(t, q), 3)
	jb := jobByID(t, q, got[tgz+"!b.wav"].JobID)
	require.Equal(t, big, object(t, q, jb.Source.Object))
	require.Equal(t, plan.BatchID, jb.BatchID, "an interrupted job finishes as first claimed")
}

// An archive entry of ~100 MB is streamed: the scan and the upload hold a
// bounded amount of it in memory. NATS runs in a child process, so the heap
// measured is intake's and the client's alone; the test is not parallel
// (nothing else allocates meanwhile) and collects garbage eagerly, so the
// peak is close to what is really held.
func TestLargeEntryStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB archive")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	ctx := testCtx(t)
	q := childQueue(t)
	const size = 100 << 20
	tarPath := filepath.Join(t.TempDir(), "big.tar")
	f, err := os.Create(tarPath)
	require.NoError(t, err)
	tw := tar.NewWriter(f)
	hdr := wavHeader(1, 16000, size-44)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "deep/er/big.wav", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}))
	_, err = tw.Write(hdr)
	require.NoError(t, err)
	chunk := bytes.Repeat([]byte{3, 1, 4, 1, 5, 9, 2, 6}, 8192)
	for left := size - len(hdr); left > 0; left -= len(chunk) {
		_, err = tw.Write(chunk[:min(left, len(chunk))])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())

	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		for {
			old := peak.Load()
			if ms.HeapAlloc <= old || peak.CompareAndSwap(old, ms.HeapAlloc) {
				return
			}
		}
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	})
	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{tarPath}}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, plan.Totals.Items, "%+v", plan.Results)
	var updates int
	res, err := plan.Queue(ctx, func(p intake.Progress) {
		if p.Result == nil {
			updates++
		}
		sample()
	})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status, res[0].Reason)
	require.Greater(t, updates, 100, "the byte counter moves during the upload")
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("heap grew by at most %.1f MiB for a %d MiB entry", float64(grew)/(1<<20), size>>20)
	require.Less(t, grew, int64(4<<20), "a 100 MiB entry must not be held in memory")

	info, err := q.Audio.GetInfo(ctx, jobByID(t, q, res[0].JobID).Source.Object)
	require.NoError(t, err)
	require.Equal(t, uint64(size), info.Size)
}
