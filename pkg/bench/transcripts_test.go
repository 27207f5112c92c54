//go:build bench

package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scribeq/scribeq/pkg/bench"
	"github.com/scribeq/scribeq/pkg/chaos"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/pgtest"
)

func init() { register("transcripts", benchTranscripts) }

const (
	transcriptsCmd = "make bench T=transcripts"
	// transcriptsSecret signs the webhooks; every process of the cluster
	// is given it (the last SCRIBEQ_WEBHOOK_SECRETS wins over chaos's own).
	transcriptsSecret = "bench-webhook-secret"
	// wordsPerSecond is conversational speech, about 150 words a minute.
	wordsPerSecond = 2.5
	// memTarget is the "small multiple of the payload" a process may grow by.
	memTarget = 5
)

// benchTranscripts posts signed webhooks for three big transcripts to a real
// `scribeq ingress` whose `scribeq sink` writes Postgres, and times each
// from POST to the committed transcripts row. Ingress and sink are started
// afresh before each size, so each peak RSS belongs to one payload.
func benchTranscripts(t *testing.T) []bench.Row {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sizes := []struct {
		name  string
		hours float64
		chars bool
	}{
		{"1 h words", 1, false},
		{"10 h words", 10, false},
		{"10 h words+chars", 10, true},
	}
	bodies := make([][]byte, len(sizes))
	reqIDs := make([]string, len(sizes))
	largest := 0
	for i, s := range sizes {
		reqIDs[i] = fmt.Sprintf("bench-transcripts-%d-%d", i, time.Now().UnixNano())
		bodies[i] = transcriptWebhook(reqIDs[i], s.hours, s.chars, uint64(i))
		largest = max(largest, len(bodies[i]))
	}

	bin := chaos.Build(t)
	dbURL := pgtest.NewDB(t)
	cfg := chaos.Config{
		Bin: bin, DatabaseURL: dbURL, Submitters: 1,
		Env: []string{"SCRIBEQ_WEBHOOK_SECRETS=" + transcriptsSecret},
	}
	if def := 64 << 20; largest > def {
		cfg.IngressArgs = []string{"--max-body-bytes=" + strconv.Itoa(largest+1<<20)}
	}
	c := chaos.Start(t, ctx, cfg)
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var rows []bench.Row
	for i, s := range sizes {
		if i > 0 {
			restartFresh(t, ctx, c)
		}
		idleIn, idleSink := hwm(t, c.Ingress), hwm(t, c.Sink)
		mb := float64(len(bodies[i])) / 1e6
		start := time.Now()
		answered, err := postWebhook(ctx, c.IngressURL, bodies[i])
		if err != nil {
			t.Fatalf("%s: %v%s", s.name, err, c.Tails(20))
		}
		landed := true
		err = chaos.Until(ctx, s.name+" transcript committed", 10*time.Millisecond, func(ctx context.Context) (bool, error) {
			var one int
			err := db.QueryRow(ctx, `SELECT 1 FROM transcripts WHERE request_id = $1`, reqIDs[i]).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		})
		took := time.Since(start)
		if err != nil {
			landed = false
			t.Errorf("%s: %v\n%s%s", s.name, err, c.QueueState(ctx), c.Tails(20))
		}
		peakIn, peakSink := hwm(t, c.Ingress), hwm(t, c.Sink)
		t.Logf("%s: %.1f MB body, answered in %s, committed in %s; ingress VmHWM %d→%d kB, sink %d→%d kB; load: %s",
			s.name, mb, answered.Round(time.Millisecond), took.Round(time.Millisecond),
			idleIn, peakIn, idleSink, peakSink, loadAvg())

		part := fmt.Sprintf("3 transcript %s (%.1f MB)", s.name, mb)
		value := "not committed"
		if landed {
			value = fmt.Sprintf("%.2f s (answered %.2f s)", took.Seconds(), answered.Seconds())
		}
		rows = append(rows, bench.Row{
			Part: part, Figure: "webhook POST → committed row", Value: value,
			Target: "lands", Met: met(landed), Command: transcriptsCmd,
		})
		for _, p := range []struct {
			name       string
			idle, peak int64
		}{{"ingress", idleIn, peakIn}, {"sink", idleSink, peakSink}} {
			growth := float64(p.peak-p.idle) * 1024 / float64(len(bodies[i]))
			rows = append(rows, bench.Row{
				Part: part, Figure: p.name + " peak RSS (growth)",
				Value: fmt.Sprintf("%s (+%s)", mib(p.peak), mib(p.peak-p.idle)),
				Ratio: fmt.Sprintf("%.1f× payload", growth), Target: fmt.Sprintf("≤ %d× payload", memTarget),
				Met: met(growth <= memTarget), Command: transcriptsCmd,
			})
		}
	}
	return rows
}

// restartFresh stops ingress and sink and starts new processes, so the
// next payload's peak RSS is its own.
func restartFresh(t *testing.T, ctx context.Context, c *chaos.Cluster) {
	t.Helper()
	for _, p := range []*chaos.Proc{c.Ingress, c.Sink} {
		if _, err := p.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx, p); err != nil {
			t.Fatalf("%v%s", err, c.Tails(20))
		}
	}
	// The sink's durable consumer outlives it, so WaitReady says nothing
	// about the new process: wait for its own "sink running" line.
	err := chaos.Until(ctx, "sink restarted", 50*time.Millisecond, func(context.Context) (bool, error) {
		marker := fmt.Sprintf("start #%d of sink", c.Sink.Starts())
		return strings.Contains(afterLast(c.Sink.Tail(400), marker), `"sink running"`), nil
	})
	if err != nil {
		t.Fatalf("%v%s", err, c.Tails(20))
	}
}

func afterLast(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i:]
	}
	return ""
}

func hwm(t *testing.T, p *chaos.Proc) int64 {
	t.Helper()
	kb, err := statusKB(p.PID(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	return kb
}

// postWebhook signs body now, as ElevenLabs would, and posts it; it
// returns how long the ingress took to answer 200.
func postWebhook(ctx context.Context, url string, body []byte) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign(transcriptsSecret, time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("post webhook: ingress answered %s: %s", resp.Status, msg)
	}
	return time.Since(start), nil
}

// transcriptWords is a small vocabulary: the size of a transcript is in
// its structure, not in its words.
var transcriptWords = strings.Fields(`the a and to of in that it is was for on with as
	we you they this be at have not but from or by an so what all were when there can
	meeting interview archive recording question answer people time year years work
	family school city river station village history told remember started moved later`)

// transcriptWebhook builds a speech_to_text_transcription webhook body for
// hours of speech, in the shape ElevenLabs sends: words and spacing
// entries with timestamps and logprob, and with chars, each with its
// character timestamps.
func transcriptWebhook(reqID string, hours float64, chars bool, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := int(hours * 3600 * wordsPerSecond)
	var words, text bytes.Buffer
	words.Grow(n * 400)
	text.Grow(n * 7)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	at := 0.0
	step := 1 / wordsPerSecond
	for i := range n {
		w := transcriptWords[rng.IntN(len(transcriptWords))]
		start, end := at, at+step*0.8
		if i > 0 {
			words.WriteByte(',')
			text.WriteByte(' ')
		}
		text.WriteString(w)
		fmt.Fprintf(&words, `{"text":%q,"start":%s,"end":%s,"type":"word","logprob":%s`, w, f(start), f(end), f(-rng.Float64()))
		if chars {
			words.WriteString(`,"characters":[`)
			d := (end - start) / float64(len(w))
			for j, r := range w {
				if j > 0 {
					words.WriteByte(',')
				}
				fmt.Fprintf(&words, `{"text":%q,"start":%s,"end":%s}`, string(r), f(start+float64(j)*d), f(start+float64(j+1)*d))
			}
			words.WriteByte(']')
		}
		words.WriteByte('}')
		if i < n-1 {
			fmt.Fprintf(&words, `,{"text":" ","start":%s,"end":%s,"type":"spacing","logprob":0`, f(end), f(at+step))
			if chars {
				fmt.Fprintf(&words, `,"characters":[{"text":" ","start":%s,"end":%s}]`, f(end), f(at+step))
			}
			words.WriteByte('}')
		}
		at += step
	}
	var b bytes.Buffer
	b.Grow(words.Len() + text.Len() + 1024)
	fmt.Fprintf(&b, `{"type":"speech_to_text_transcription","event_timestamp":%d,"data":{"request_id":%q,`+
		`"webhook_metadata":{"job_id":%q},"transcription":{"language_code":"en","language_probability":0.98,`+
		`"text":%q,"words":[`, time.Now().Unix(), reqID, reqID, text.String())
	b.Write(words.Bytes())
	fmt.Fprintf(&b, `],"transcription_id":%q,"audio_duration_secs":%s}}}`, "tr-"+reqID, f(hours*3600))
	return b.Bytes()
}
