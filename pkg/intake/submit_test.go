package intake_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// The same bytes under different names (a copy, an archive entry) are one
// job; the same bytes with other options are another job sharing the object.
func TestDuplicatesAreOneJob(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	same, other := wav(t, 1, 1), wav(t, 1, 2)
	a := writeFile(t, filepath.Join(dir, "in", "a.wav"), same)
	b := writeFile(t, filepath.Join(dir, "in", "copy", "b.wav"), same)
	writeFile(t, filepath.Join(dir, "in", "other.wav"), other)
	z := writeZip(t, filepath.Join(dir, "x.zip"), []entry{{name: "deep/z.wav", data: same}})
	m := writeFile(t, filepath.Join(dir, "fr.csv"), []byte("path,language\nin/a.wav,fr\n"))

	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{filepath.Join(dir, "in"), z, m}}, nil)
	require.NoError(t, err)
	require.Equal(t, 3, plan.Totals.Items, "a.wav, other.wav, a.wav in French")
	require.Equal(t, int64(len(same)+len(other)), plan.Totals.UploadBytes, "the same bytes are uploaded once")
	var last intake.Progress
	res, err := plan.Queue(ctx, func(p intake.Progress) { last = p })
	require.NoError(t, err)
	require.Equal(t, 3, last.Done)
	require.Equal(t, last.TotalBytes, last.Bytes)
	require.Equal(t, plan.Totals.UploadBytes, last.Bytes)

	got := byWhere(t, res)
	require.Equal(t, intake.Queued, got[a].Status)
	for _, src := range []string{b, z + "!deep/z.wav"} {
		require.Equal(t, intake.Repeated, got[src].Status, src)
		require.Equal(t, a, got[src].DuplicateOf)
		require.Equal(t, got[a].JobID, got[src].JobID)
		require.Contains(t, got[src].Reason, "same content and options as "+a)
	}
	fr := got[m+":2 "+a]
	require.Equal(t, intake.Queued, fr.Status)
	require.NotEqual(t, got[a].JobID, fr.JobID)
	require.Len(t, jobs(t, q), 3)
	require.Equal(t, jobByID(t, q, got[a].JobID).Source.Object, jobByID(t, q, fr.JobID).Source.Object)
}

// Killed between publishing the job and its event: the claim stays, and
// running the submit again finishes it exactly once.
func TestInterruptedBetweenPublishes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	a := writeFile(t, filepath.Join(t.TempDir(), "a.wav"), wav(t, 1, 1))
	req := intake.Request{Sources: []string{a}}
	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, req, nil)
	require.NoError(t, err)

	// No EVENTS stream: the job is published, its event never is.
	require.NoError(t, q.JS.DeleteStream(ctx, event.StreamEvents))
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	res, err := plan.Queue(qctx, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, intake.Failed, res[0].Status)
	require.Len(t, jobs(t, q), 1)

	_, err = queue.Open(ctx, q.NC, queue.Config{}) // as every process does at start
	require.NoError(t, err)
	res, err = in.Submit(ctx, req, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status)
	require.Equal(t, "finished an interrupted submit", res[0].Reason)
	require.Len(t, jobs(t, q), 1, "the job message is not repeated")
	ev := queuedEvents(t, q)
	require.Len(t, ev, 1)
	require.Equal(t, plan.BatchID, ev[0].Job.BatchID)

	res, err = in.Submit(ctx, req, nil)
	require.NoError(t, err)
	require.Equal(t, intake.AlreadySubmitted, res[0].Status)
	require.Len(t, queuedEvents(t, q), 1)
}

// A plain "claimed" record (older builds) is finished too.
func TestLegacyClaimIsFinished(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	data := wav(t, 1, 1)
	a := writeFile(t, filepath.Join(t.TempDir(), "a.wav"), data)
	sum := sha256.Sum256(data)
	id := intake.JobID("sha256:"+hex.EncodeToString(sum[:]), event.Options{Model: "scribe_v2"}, false)
	_, err := q.Intake.Create(ctx, id, []byte("claimed"))
	require.NoError(t, err)

	res, err := intake.New(q, nil).Submit(ctx, intake.Request{Sources: []string{a}}, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Queued, res[0].Status)
	require.Equal(t, id, res[0].JobID)
	require.Len(t, jobs(t, q), 1)
	e, err := q.Intake.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "queued", string(e.Value()))
}

func TestGlobsIncludeExclude(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	for i, p := range []string{"2024/a.wav", "2024/b.wav", "2025/c.wav", ".hidden/d.wav", "2024/.e.wav"} {
		writeFile(t, filepath.Join(dir, "calls", p), wav(t, 0.5, i))
	}
	writeFile(t, filepath.Join(dir, "calls", "2024", "notes.txt"), []byte("x"))
	in := intake.New(q, nil)
	for _, tt := range []struct {
		name             string
		sources          []string
		include, exclude []string
		ready            []string
		other            map[string]string // source → reason
	}{
		{name: "Recursive", sources: []string{"calls/**/*.wav"}, ready: []string{"2024/a.wav", "2024/b.wav", "2025/c.wav"}},
		{name: "Exclude", sources: []string{"calls/**/*.wav"}, exclude: []string{"2025/**"}, ready: []string{"2024/a.wav", "2024/b.wav"}},
		{name: "FolderInclude", sources: []string{"calls"}, include: []string{"*.wav"}, exclude: []string{"b.wav"}, ready: []string{"2024/a.wav", "2025/c.wav"}},
		{
			name: "GlobOfFolders", sources: []string{"calls/202?"}, ready: []string{"2024/a.wav", "2024/b.wav", "2025/c.wav"},
			other: map[string]string{"2024/notes.txt": "not audio or video (.txt file, not read)"},
		},
		{name: "DotsOnlyWhenNamed", sources: []string{"calls/*/.*.wav"}, ready: []string{"2024/.e.wav"}},
		{name: "NoMatch", sources: []string{"calls/*.flac"}, other: map[string]string{"*.flac": "no files match"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var sources []string
			for _, s := range tt.sources {
				sources = append(sources, filepath.Join(dir, s))
			}
			plan, err := in.Scan(ctx, intake.Request{Sources: sources, Include: tt.include, Exclude: tt.exclude}, nil)
			require.NoError(t, err)
			var ready []string
			other := map[string]string{}
			for _, r := range plan.Results {
				rel := strings.TrimPrefix(r.Source, filepath.Join(dir, "calls")+"/")
				if r.Status == intake.Ready {
					ready = append(ready, rel)
				} else {
					other[rel] = r.Reason
				}
			}
			require.Equal(t, tt.ready, ready)
			for src, reason := range tt.other {
				require.Contains(t, other[src], reason, src)
			}
			require.Len(t, other, len(tt.other))
		})
	}
	_, err := in.Scan(ctx, intake.Request{Sources: []string{dir}, Include: []string{"[a"}}, nil)
	require.ErrorContains(t, err, "--include")
}

func TestStdinList(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.wav"), wav(t, 1, 1))
	b := writeFile(t, filepath.Join(dir, "b.wav"), wav(t, 1, 2))
	c := writeFile(t, filepath.Join(dir, "sub", "c.wav"), wav(t, 1, 3))
	list := strings.Join([]string{
		"# recordings to send",
		"",
		a,
		"https://example.org/x.mp3",
		"http://example.org/y.mp3",
		filepath.Join(dir, "missing.wav"),
		"  " + filepath.Join(dir, "sub") + "  ",
	}, "\n")
	in := intake.New(q, nil)
	res, err := in.Submit(ctx, intake.Request{Sources: []string{"-", b}, Stdin: strings.NewReader(list)}, nil)
	require.NoError(t, err)
	got := byWhere(t, res)
	require.Len(t, got, 6, "%v", res)
	require.Equal(t, intake.Queued, got["stdin:3 "+a].Status)
	require.Equal(t, intake.Queued, got["stdin:4 https://example.org/x.mp3"].Status)
	require.Equal(t, intake.Failed, got["stdin:5 http://example.org/y.mp3"].Status)
	require.Contains(t, got["stdin:6 "+filepath.Join(dir, "missing.wav")].Reason, "no such file")
	require.Equal(t, intake.Queued, got["stdin:7 "+c].Status)
	require.Equal(t, intake.Queued, got[b].Status)

	_, err = in.Scan(ctx, intake.Request{Sources: []string{"-"}}, nil)
	require.ErrorContains(t, err, "stdin")
}

func TestLimits(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	in, err := intake.NewWithConfig(q, intake.Config{Limits: intake.Limits{
		MaxBytes: 50_000, MaxDuration: 2 * time.Second, MaxDurationMultichannel: time.Second,
	}})
	require.NoError(t, err)

	big := writeFile(t, filepath.Join(dir, "big.wav"), wav(t, 2, 1))           // 64 kB
	long := writeFile(t, filepath.Join(dir, "long.wav"), wavAt(t, 1000, 3, 2)) // 6 kB, 3 s
	ok := writeFile(t, filepath.Join(dir, "ok.wav"), wavAt(t, 1000, 2, 3))     // 2 s: at the limit
	stereo := writeFile(t, filepath.Join(dir, "stereo.wav"), wavChannels(2, 1000, 2))
	six := writeFile(t, filepath.Join(dir, "six.wav"), wavChannels(6, 1000, 0.5))
	short := writeFile(t, filepath.Join(dir, "short.wav"), wavChannels(2, 1000, 0.5))

	plan, err := in.Scan(ctx, intake.Request{Sources: []string{big, long, ok}}, nil)
	require.NoError(t, err)
	got := byWhere(t, plan.Results)
	require.Equal(t, intake.Skipped, got[big].Status)
	require.Equal(t, "64.1 kB is over the 50.0 kB upload limit (--max-file-size)", got[big].Reason)
	require.Equal(t, intake.Skipped, got[long].Status)
	require.Equal(t, "3 s long is over the 2 s duration limit (--max-duration)", got[long].Reason)
	require.Equal(t, intake.Ready, got[ok].Status)

	plan, err = in.Scan(ctx, intake.Request{Sources: []string{stereo, six, short}, Options: event.Options{MultiChannel: true}}, nil)
	require.NoError(t, err)
	got = byWhere(t, plan.Results)
	require.Equal(t, intake.Skipped, got[stereo].Status)
	require.Contains(t, got[stereo].Reason, "--max-duration-multichannel")
	require.Equal(t, intake.Skipped, got[six].Status)
	require.Contains(t, got[six].Reason, "6 channels: multichannel transcription accepts at most 5")
	require.Equal(t, intake.Ready, got[short].Status)
	require.Equal(t, 2, got[short].Channels)

	// Without multichannel, the channel count does not matter.
	plan, err = in.Scan(ctx, intake.Request{Sources: []string{six}}, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Ready, plan.Results[0].Status)

	_, err = intake.NewWithConfig(q, intake.Config{Pricing: intake.Pricing{PerHour: -1}})
	require.ErrorContains(t, err, "Pricing.PerHour")
}

// What is sent is decided by content; extensions only decide what, found
// in a folder, is worth reading.
func TestContentDecides(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	fake := writeFile(t, filepath.Join(dir, "d", "fake.mp3"), pdf)
	text := writeFile(t, filepath.Join(dir, "d", "text.wav"), []byte("these are my notes, not a recording\n"))
	noise := writeFile(t, filepath.Join(dir, "d", "noise.m4a"), []byte{0x00, 0x01, 0xfe, 0x02, 0x99, 0x00, 0x13, 0x37})
	rec := writeFile(t, filepath.Join(dir, "d", "recording"), wav(t, 1, 1))
	notes := writeFile(t, filepath.Join(dir, "d", "notes.txt"), wav(t, 1, 2))
	empty := writeFile(t, filepath.Join(dir, "d", "empty.mp3"), nil)

	in := intake.New(q, nil)
	plan, err := in.Scan(ctx, intake.Request{Sources: []string{filepath.Join(dir, "d")}}, nil)
	require.NoError(t, err)
	got := byWhere(t, plan.Results)
	for src, want := range map[string]string{
		fake:  "not audio or video (looks like pdf)",
		text:  "not audio or video (looks like text)",
		noise: "not audio or video (content not recognised)",
		notes: "not audio or video (.txt file, not read)",
		empty: "empty file",
	} {
		require.Equal(t, intake.Skipped, got[src].Status, src)
		require.Equal(t, want, got[src].Reason, src)
	}
	require.Equal(t, intake.Ready, got[rec].Status)
	require.Equal(t, "wav", got[rec].Format)

	// Named directly, a file is read whatever its name.
	plan, err = in.Scan(ctx, intake.Request{Sources: []string{notes}}, nil)
	require.NoError(t, err)
	require.Equal(t, intake.Ready, plan.Results[0].Status)
}

func TestEstimateAndPricing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	half := writeFile(t, filepath.Join(dir, "half.wav"), wavAt(t, 100, 1800, 1))
	hour := writeFile(t, filepath.Join(dir, "hour.wav"), wavChannels(2, 100, 3600))
	in, err := intake.NewWithConfig(q, intake.Config{Pricing: intake.Pricing{PerHour: 0.30, Currency: "EUR"}})
	require.NoError(t, err)

	req := intake.Request{
		Sources: []string{half, "https://example.org/talk.mp3"},
		Options: event.Options{Keyterms: []string{"acme"}, EntityDetection: "pii"},
		Batch:   "may calls",
	}
	plan, err := in.Scan(ctx, req, nil)
	require.NoError(t, err)
	tot := plan.Totals
	require.Equal(t, 2, tot.Items)
	require.InDelta(t, 1800, tot.AudioSecs, 0.01)
	require.Equal(t, 1, tot.UnknownDuration, "the URL")
	require.InDelta(t, 0.5*0.30*1.5, tot.Cost, 1e-9)
	require.Equal(t, "EUR", tot.Currency)
	res, err := plan.Queue(ctx, nil)
	require.NoError(t, err)
	j := jobByID(t, q, res[0].JobID)
	require.Equal(t, &event.Pricing{PerHour: 0.30, Multiplier: 1.5, Currency: "EUR"}, j.Pricing)
	require.Equal(t, "may calls", j.BatchName)
	require.Equal(t, plan.BatchID, jobByID(t, q, res[1].JobID).BatchID, "one batch per call")

	// Multichannel bills every channel.
	plan, err = in.Scan(ctx, intake.Request{Sources: []string{hour}, Options: event.Options{MultiChannel: true}}, nil)
	require.NoError(t, err)
	require.NotEqual(t, j.BatchID, plan.BatchID, "a fresh batch per call")
	require.InDelta(t, 0.30*2, plan.Totals.Cost, 1e-9)
	res, err = plan.Queue(ctx, nil)
	require.NoError(t, err)
	require.InDelta(t, 2.0, jobByID(t, q, res[0].JobID).Pricing.Multiplier, 1e-9)

	p := intake.DefaultPricing
	many := event.Options{Keyterms: make([]string, 101)}
	require.InDelta(t, 20.0/3600*0.40*1.2, p.Cost(5, many, 0), 1e-12, "more than 100 keyterms: at least 20 s")
	require.Zero(t, p.Cost(0, event.Options{}, 0), "unknown duration")
}

func TestQueueOnce(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	a := writeFile(t, filepath.Join(t.TempDir(), "a.wav"), wav(t, 1, 1))
	plan, err := intake.New(q, nil).Scan(ctx, intake.Request{Sources: []string{a}}, nil)
	require.NoError(t, err)
	require.Empty(t, jobs(t, q), "a scan publishes nothing")
	_, err = plan.Queue(ctx, nil)
	require.NoError(t, err)
	_, err = plan.Queue(ctx, nil)
	require.Error(t, err)
	require.Len(t, jobs(t, q), 1)
}

// A symlinked folder named directly is walked; inside a folder, symlinks to
// files are followed and symlinks to folders are not (no loops).
func TestSymlinks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real", "a.wav"), wav(t, 1, 1))
	writeFile(t, filepath.Join(dir, "elsewhere", "b.wav"), wav(t, 1, 2))
	require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere", "b.wav"), filepath.Join(dir, "real", "b.wav")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "real", "loop")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")))

	plan, err := intake.New(q, nil).Scan(ctx, intake.Request{Sources: []string{filepath.Join(dir, "link")}}, nil)
	require.NoError(t, err)
	var ready []string
	for _, r := range plan.Results {
		require.Equal(t, intake.Ready, r.Status, "%+v", r)
		ready = append(ready, r.Source)
	}
	require.Equal(t, []string{filepath.Join(dir, "link", "a.wav"), filepath.Join(dir, "link", "b.wav")}, ready)
}
