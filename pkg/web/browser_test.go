package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/pipeline"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/web"
)

// chromium finds a Chromium to drive. Without one the browser test fails
// in CI (CI=true) and is skipped elsewhere, so a laptop without a browser
// can still run the suite.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium: CI must install Debian's chromium package (apt-get install -y chromium)")
	}
	t.Skip("no Chromium installed (apt-get install chromium); the browser test runs in CI")
	return ""
}

// The phrase the browser searches for, said in one of the recordings the
// test submits: the emulator transcribes a WAV as its comment, with the
// words spread evenly over the audio.
const (
	spokenText  = "Thank you for calling the archive. Our refund policy is simple and fair. Is there anything else today?"
	spokenSecs  = 24.0
	webhookSecr = "whsec-Secr3t-browser-5b7d"
)

// TestWebBrowser drives the console in headless Chromium against a real
// scribeq (embedded NATS, Postgres, submitter, ingress, sink and the
// ElevenLabs emulator): a batch submitted while the overview is open
// reaches 100% without a reload; a search hit cues the player at the
// phrase's second; a dead letter is replayed with its button; and no page
// holds a secret. It saves a screenshot of every page (WEB_SCREENSHOTS).
func TestWebBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	shots := os.Getenv("WEB_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	dbURL := pgtest.NewDB(t)
	p, err := pipeline.Start(ctx, pipeline.Config{
		NatsPort: -1, DataDir: t.TempDir(), DatabaseURL: dbURL,
		IngressAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0",
		// Slow enough that the overview is seen before the batch is done.
		EmulatorDelay:  1500 * time.Millisecond,
		WebhookSecrets: []string{webhookSecr},
		Concurrency:    4, MaxConcurrent: 10,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	db, err := query.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	console, err := web.New(web.Config{DB: db, Queue: p.Queue, Write: true, Refresh: 300 * time.Millisecond,
		Auth: web.Auth{Token: testToken}})
	require.NoError(t, err)
	srv := httptest.NewServer(console)
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	// No deadline on the context that starts the browser (it would stop
	// the browser); every step below runs under ctx's deadline instead.
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	require.NoError(t, chromedp.Do(bctx))
	stop := context.AfterFunc(ctx, bcancel)
	defer stop()
	// Each step gets its own deadline; a failed step shows the page it
	// failed on.
	html := func(t *testing.T) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.OuterHTML(chromedp.CSS("html")))
		require.NoError(t, err)
		return v
	}
	run := func(t *testing.T, what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		if _, err := chromedp.Run(sctx, a); err != nil {
			t.Fatalf("%s: %v\npage:\n%s", what, err, html(t))
		}
	}
	do := func(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		run(t, "browser steps", chromedp.Steps(steps...))
	}
	eval := func(t *testing.T, expr string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err, expr)
		return v
	}
	shot := func(t *testing.T, name string) { t.Helper(); screenshot(t, bctx, filepath.Join(shots, name)) }

	secrets := []string{testToken, webhookSecr, "Secr3t"}
	// visit loads a page, waits for it, checks it holds no secret, and
	// saves its picture.
	visit := func(t *testing.T, url, name string, ready chromedp.Action[chromedp.Void]) {
		t.Helper()
		do(t, chromedp.Navigate(srv.URL+url), ready)
		page := html(t)
		for _, s := range secrets {
			require.NotContains(t, page, s, url)
		}
		if name != "" {
			shot(t, name)
		}
	}

	// Log in by typing the token, as a person would.
	visit(t, "/login", "login.png", chromedp.WaitVisible(chromedp.CSS("#token")))
	do(t, chromedp.SendKeys(chromedp.CSS("#token"), testToken), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#live")))

	t.Run("BatchReachesFullWithoutReload", func(t *testing.T) {
		do(t, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = "yes", undefined`))
		paths := writeRecordings(t)
		res, err := intake.New(p.Queue, nil).Submit(ctx, intake.Request{Sources: paths, Batch: "browser batch",
			Options: event.Options{Diarize: true, Language: "en"}}, nil)
		require.NoError(t, err)
		require.Len(t, res, len(paths))

		// The batch appears while it runs, then shows 100%, in the same page.
		seenRunning := false
		pct := ""
		waitFor(t, "the batch at 100%", 2*time.Minute, func() bool {
			pct = eval(t, `(() => { const b = [...document.querySelectorAll('.batch')]
				.find(e => e.querySelector('.batch-name').textContent === 'browser batch');
				return b ? b.querySelector('.batch-pct').textContent : '' })()`)
			if pct != "" && pct != "100%" && !seenRunning {
				seenRunning = true
				shot(t, "overview-running.png")
			}
			return pct == "100%"
		})
		require.Equal(t, "yes", eval(t, `String(window.__sameDocument)`), "the page updated itself, it was not reloaded")
		require.True(t, seenRunning, "the batch was seen before it finished")
		visit(t, "/", "overview.png", chromedp.WaitVisible(chromedp.CSS(".batch.finished")))
	})

	var jobURL string
	t.Run("SearchHitCuesThePlayer", func(t *testing.T) {
		words := strings.Fields(spokenText)
		idx := slices.Index(words, "refund")
		want := float64(idx) * spokenSecs / float64(len(words))

		visit(t, "/search", "", chromedp.WaitVisible(chromedp.CSS("#q")))
		do(t, chromedp.SendKeys(chromedp.CSS("#q"), `"refund policy"`), chromedp.Submit(chromedp.CSS("#q")),
			chromedp.WaitVisible(chromedp.CSS(".hit-link")))
		require.Contains(t, html(t), "<mark>refund</mark>")
		shot(t, "search.png")
		href, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(".hit-link"), "href"))
		require.NoError(t, err)
		require.Contains(t, href.Value, fmt.Sprintf("?t=%g", math.Round(want*100)/100))
		jobURL = strings.SplitN(href.Value, "?", 2)[0]

		do(t, chromedp.Click(chromedp.CSS(".hit-link")), chromedp.WaitVisible(chromedp.CSS("#player")))
		_, err = chromedp.Run(bctx, chromedp.Poll[bool](
			`(() => { const a = document.getElementById('player'); return a.readyState >= 1 && a.currentTime > 0 })()`,
			chromedp.WithPollingTimeout(30*time.Second)))
		require.NoError(t, err, "the audio loads and is cued")
		at, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById('player').currentTime`))
		require.NoError(t, err)
		require.InDelta(t, want, at, 0.05, "the player is cued at the phrase")
		word, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(".w.now")))
		require.NoError(t, err)
		require.Equal(t, "refund", word, "the cued word is highlighted")
		shot(t, "job.png")

		// Clicking the first word plays from there; the highlight follows.
		do(t, chromedp.Click(chromedp.CSS(".w[data-s]")))
		_, err = chromedp.Run(bctx, chromedp.Poll[bool](
			`(() => { const a = document.getElementById('player'); return a.currentTime < 2 && !a.paused &&
				document.querySelector('.w.now') !== null && parseFloat(document.querySelector('.w.now').dataset.s) < 2 })()`,
			chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "a click on a word plays from it")
	})

	t.Run("DeadLetterReplay", func(t *testing.T) {
		queued, err := json.Marshal(&event.Event{V: event.Version, Type: event.TypeQueued, JobID: "job-from-dead-letter",
			At: time.Now().UTC(), Process: "submit", Job: &event.Job{V: event.Version, JobID: "job-from-dead-letter",
				Source: event.Source{URL: "https://example.org/lost-and-found.mp3"}, Options: event.Options{Model: "scribe_v1"},
				At: time.Now().UTC()}})
		require.NoError(t, err)
		require.NoError(t, p.Queue.PublishEvent(ctx, &event.Event{Type: event.TypeDeadLetter, Process: "sink",
			DeadLetter: &event.DeadLetter{Stream: event.StreamEvents, Subject: event.TypeQueued.Subject(),
				MsgID: "job-from-dead-letter:queued", Seq: 1, Data: queued,
				Error: "sink: apply queued: the database refused the write (read-only transaction)", Attempts: 12}}))
		waitFor(t, "the dead letter to be stored", time.Minute, func() bool {
			n, err := db.DeadLetterCount(ctx)
			return err == nil && n == 1
		})
		replay := chromedp.CSS(`button[aria-label^="Replay dead letter"]`)
		visit(t, "/dead-letters", "dead-letters.png", chromedp.WaitVisible(replay))
		do(t, chromedp.Click(replay), chromedp.WaitVisible(chromedp.CSS(".notice")))
		// The sink applies the replayed event (the job appears) and marks
		// the dead letter replayed.
		waitFor(t, "the replayed job", time.Minute, func() bool {
			_, err := db.Show(ctx, "job-from-dead-letter", false)
			return err == nil
		})
		waitFor(t, "the replay to be recorded", time.Minute, func() bool {
			n, err := db.DeadLetterCount(ctx)
			return err == nil && n == 0
		})
		visit(t, "/dead-letters?all=1", "", chromedp.WaitVisible(chromedp.CSS(".deadletters")))
		status, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(".deadletters tbody tr td:last-child")))
		require.NoError(t, err)
		require.Contains(t, status, "replayed")
	})

	t.Run("BusyOverview", func(t *testing.T) {
		// A larger batch, some of whose calls ElevenLabs (the emulator)
		// refuses: the overview shows it moving, with failures and their
		// reasons, until every job has finished one way or the other.
		require.NoError(t, p.Emulator.SetFaults(emulator.Faults{Status: map[int]float64{422: 0.2}}))
		defer func() { _ = p.Emulator.SetFaults(emulator.Faults{}) }()
		dir := t.TempDir()
		var paths []string
		for i := range 12 {
			paths = append(paths, writeWAV(t, dir, fmt.Sprintf("call-%02d.wav", i+1), 20+float64(i*7), ""))
		}
		_, err := intake.New(p.Queue, nil).Submit(ctx, intake.Request{Sources: paths, Batch: "Q3 calls",
			Options: event.Options{Diarize: true}, Metadata: map[string]string{"customer": "acme"}}, nil)
		require.NoError(t, err)
		visit(t, "/", "", chromedp.WaitVisible(chromedp.CSS("#live")))
		pctOf := `(() => { const b = [...document.querySelectorAll('.batch')]
			.find(e => e.querySelector('.batch-name').textContent === 'Q3 calls');
			return b ? b.querySelector('.batch-pct').textContent : '' })()`
		busy := false
		waitFor(t, "the second batch at 100%", 2*time.Minute, func() bool {
			pct := eval(t, pctOf)
			if !busy && pct != "" && pct != "0%" && pct != "100%" {
				busy = true
				shot(t, "overview-busy.png")
			}
			return pct == "100%"
		})
		visit(t, "/jobs?batch=Q3+calls", "jobs-batch.png", chromedp.WaitVisible(chromedp.CSS("table.jobs")))
	})

	t.Run("EveryPageOnceMore", func(t *testing.T) {
		visit(t, "/jobs", "jobs.png", chromedp.WaitVisible(chromedp.CSS("table.jobs")))
		visit(t, "/jobs?state=completed&batch=browser+batch", "", chromedp.WaitVisible(chromedp.CSS("table.jobs")))
		visit(t, "/search?q=archive", "", chromedp.WaitVisible(chromedp.CSS(".hits")))
		visit(t, "/nope", "", chromedp.WaitVisible(chromedp.CSS(".error")))
		require.NotEmpty(t, jobURL)
		// On a phone.
		do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		visit(t, jobURL, "job-phone.png", chromedp.WaitVisible(chromedp.CSS("#transcript")))
		visit(t, "/", "overview-phone.png", chromedp.WaitVisible(chromedp.CSS("#live")))
		do(t, chromedp.ResetViewport())
	})
}

// writeRecordings writes the first batch: the recording that says
// spokenText and two short ones with other words.
func writeRecordings(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	return []string{
		writeWAV(t, dir, "refunds-call.wav", spokenSecs, spokenText),
		writeWAV(t, dir, "greeting.wav", 4, "Good morning and welcome to the morning show."),
		writeWAV(t, dir, "weather.wav", 6, "Rain in the north, sun in the south, wind everywhere."),
	}
}

// writeWAV writes secs of a quiet tone as 8 kHz WAV; the emulator
// transcribes it as comment, or as pseudo-words without one.
func writeWAV(t *testing.T, dir, name string, secs float64, comment string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(name)), uint64(secs)))
	samples := make([]int16, int(secs*8000))
	for i := range samples {
		samples[i] = int16(800 * math.Sin(float64(i)*2*math.Pi*220/8000) * (0.5 + rng.Float64()/2))
	}
	var buf bytes.Buffer
	require.NoError(t, audio.WriteWAV(&buf, 8000, samples, comment))
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// screenshot saves the whole page as PNG.
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s", path)
}
