package sink_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/sink"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	ctx  context.Context
	q    *queue.Queue
	conn *pgx.Conn
}

func setup(t *testing.T) *testBundle { return setupWith(t, sink.Config{MaxAttempts: 3}) }

// setupWith runs a sink with cfg (MaxWait 100 ms unless set) on a fresh
// database and stream, stopped in t.Cleanup.
func setupWith(t *testing.T, cfg sink.Config) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	url := pgtest.NewDB(t)
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	q := natstest.Queue(t, queue.Config{ClaimCheckBytes: 8 << 10})
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 100 * time.Millisecond
	}
	snk, err := sink.New(q, st, cfg)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- snk.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &testBundle{ctx: ctx, q: q, conn: conn}
}

func (b *testBundle) waitFor(t *testing.T, query string, want int, args ...any) {
	t.Helper()
	for {
		var n int
		require.NoError(t, b.conn.QueryRow(b.ctx, query, args...).Scan(&n))
		if n == want {
			return
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("%s: got %d, want %d", query, n, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func job(id string) *event.Job {
	return &event.Job{V: 1, JobID: id, Source: event.Source{Object: "abc", Path: "/a/" + id + ".wav"}, Options: event.Options{Model: "scribe_v2"}}
}

func TestEventsLandInPostgres(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Now().UTC()
	for _, e := range []*event.Event{
		{Type: event.TypeQueued, JobID: "j1", Job: job("j1"), At: at},
		{Type: event.TypeSubmitted, JobID: "j1", RequestID: "r1", TranscriptionID: "t1", At: at.Add(time.Second)},
		{Type: event.TypeCompleted, JobID: "j1", RequestID: "r1", At: at.Add(2 * time.Second),
			Transcription: json.RawMessage(`{"language_code":"en","language_probability":0.9,"text":"hello","words":[{"text":"hello","type":"word","logprob":0}]}`)},
	} {
		require.NoError(t, b.q.PublishEvent(b.ctx, e))
	}
	b.waitFor(t, `SELECT count(*) FROM jobs WHERE job_id='j1' AND state='completed' AND request_id='r1'`, 1)
	var text string
	require.NoError(t, b.conn.QueryRow(b.ctx, `SELECT text FROM transcripts WHERE request_id='r1'`).Scan(&text))
	require.Equal(t, "hello", text)
}

// A transcript larger than one message goes by claim check and must land
// whole; its object is released once committed.
func TestLargeTranscriptLandsWhole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	words := make([]map[string]any, 0, 3000)
	var sb strings.Builder
	for i := range 3000 {
		w := "word" + string(rune('a'+i%26))
		words = append(words, map[string]any{"text": w, "type": "word", "start": float64(i), "end": float64(i) + 0.5, "logprob": -0.1})
		sb.WriteString(w + " ")
	}
	tr, err := json.Marshal(map[string]any{"language_code": "en", "language_probability": 0.9, "text": sb.String(), "words": words})
	require.NoError(t, err)
	require.Greater(t, len(tr), 8<<10)
	require.NoError(t, b.q.PublishEvent(b.ctx, &event.Event{Type: event.TypeCompleted, JobID: "big", RequestID: "r-big", Transcription: tr}))
	b.waitFor(t, `SELECT count(*) FROM transcripts WHERE request_id='r-big' AND jsonb_array_length(words)=3000`, 1)
	var text string
	require.NoError(t, b.conn.QueryRow(b.ctx, `SELECT text FROM transcripts WHERE request_id='r-big'`).Scan(&text))
	require.Equal(t, sb.String(), text)
	for {
		var names []string
		lister, err := b.q.Payloads.List(b.ctx)
		if err == nil {
			for _, o := range lister {
				if !o.Deleted {
					names = append(names, o.Name)
				}
			}
		}
		if len(names) == 0 {
			break
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("claim-check objects left behind: %v", names)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A message that can never be applied is kept in dead_letters with its
// bytes, and does not hold up the rest.
func TestPoisonMessageIsDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.q.JS.Publish(b.ctx, "stt.events.completed", []byte(`{"v":1,"type":"completed"`))
	require.NoError(t, err)
	require.NoError(t, b.q.PublishEvent(b.ctx, &event.Event{
		Type: event.TypeCompleted, RequestID: "r-bad", Transcription: json.RawMessage(`{"text":5}`),
	}))
	require.NoError(t, b.q.PublishEvent(b.ctx, &event.Event{Type: event.TypeQueued, JobID: "ok", Job: job("ok")}))
	b.waitFor(t, `SELECT count(*) FROM jobs WHERE job_id='ok'`, 1)
	b.waitFor(t, `SELECT count(*) FROM dead_letters`, 2)
	var data []byte
	require.NoError(t, b.conn.QueryRow(b.ctx, `SELECT data FROM dead_letters WHERE data = $1`, []byte(`{"v":1,"type":"completed"`)).Scan(&data))
	b.waitFor(t, `SELECT count(*) FROM transcripts`, 0)
}
