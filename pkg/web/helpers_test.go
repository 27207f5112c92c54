package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/store"
	"github.com/scribeq/scribeq/pkg/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Credentials of the test consoles. No page may ever show them.
const (
	testToken    = "tok-Secr3t-4f1c9a"
	testUser     = "ops"
	testPassword = "pw-Secr3t-77b2e0"
	batchID      = "0b6f2c1e-4a8d-4c3e-9f11-2d7e5a9b8c01"
)

type testBundle struct {
	dbURL string
	st    *store.Store
	q     *queue.Queue
	db    *query.DB
	srv   *httptest.Server
	audio []byte // job-a's audio, stored in AUDIO in irregular chunks
}

type setupOpts struct {
	write   bool
	noQueue bool
	auth    *web.Auth
}

func setup(t *testing.T, o setupOpts) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := &testBundle{dbURL: pgtest.NewDB(t)}
	var err error
	b.st, err = store.Open(ctx, b.dbURL, nil)
	require.NoError(t, err)
	t.Cleanup(b.st.Close)
	b.db, err = query.Open(ctx, b.dbURL)
	require.NoError(t, err)
	t.Cleanup(b.db.Close)
	b.q = natstest.Queue(t, queue.Config{})
	b.audio = storeAudio(t, b.q)
	seed(t, b.st, hexSum(b.audio))

	cfg := web.Config{DB: b.db, Queue: b.q, Write: o.write, Refresh: 200 * time.Millisecond,
		Auth: web.Auth{Token: testToken, User: testUser, Password: testPassword}}
	if o.auth != nil {
		cfg.Auth = *o.auth
	}
	if o.noQueue {
		cfg.Queue = nil
	}
	srv, err := web.New(cfg)
	require.NoError(t, err)
	b.srv = httptest.NewServer(srv)
	t.Cleanup(b.srv.Close)
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// storeAudio puts 10 s of WAV into AUDIO through a reader that returns
// short reads of varying length: the object store cuts a chunk at each
// read, so the chunks differ in size as they can in production.
func storeAudio(t *testing.T, q *queue.Queue) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 9))
	samples := make([]int16, 16000*10)
	for i := range samples {
		samples[i] = int16(rng.IntN(4000) - 2000)
	}
	var buf bytes.Buffer
	require.NoError(t, audio.WriteWAV(&buf, 16000, samples, ""))
	data := buf.Bytes()
	_, err := q.Audio.Put(context.Background(), jetstream.ObjectMeta{
		Name: hexSum(data), Opts: &jetstream.ObjectMetaOptions{ChunkSize: 16 << 10},
	}, &choppyReader{data: data, rng: rng})
	require.NoError(t, err)
	info, err := q.Audio.GetInfo(context.Background(), hexSum(data))
	require.NoError(t, err)
	require.Greater(t, info.Chunks, uint32(25), "the audio must span many chunks")
	return data
}

type choppyReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *choppyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), 1+r.rng.IntN(16<<10))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// transcript of job-a: two speakers, one word every half second, "refund"
// (word 11) at 5.5 s.
const sentenceA = "Hello and welcome to the support line. Today we discuss the refund policy of our store."

func wordsA() []map[string]any {
	var out []map[string]any
	speaker := "speaker_0"
	for i, w := range strings.Fields(sentenceA) {
		start := float64(i) * 0.5
		if i > 0 {
			out = append(out, map[string]any{"text": " ", "type": "spacing", "start": start - 0.1, "end": start, "speaker_id": speaker})
		}
		if i == 7 {
			speaker = "speaker_1"
		}
		out = append(out, map[string]any{"text": w, "type": "word", "start": start, "end": start + 0.4,
			"speaker_id": speaker, "logprob": -0.1})
	}
	return out
}

// seed applies the events of three jobs the way the sink would: job-a
// completed with a diarized transcript, job-b failed, job-c queued; and
// a dead letter.
func seed(t *testing.T, st *store.Store, object string) {
	t.Helper()
	ctx := context.Background()
	base := time.Now().Add(-30 * time.Minute).UTC()
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	job := func(id, name string, s int) *event.Event {
		return &event.Event{V: event.Version, Type: event.TypeQueued, JobID: id, At: at(s), Process: "intake",
			Job: &event.Job{V: event.Version, JobID: id, BatchID: batchID, BatchName: "calls",
				Source:   event.Source{Object: object, Path: "/data/" + name, Name: name, Size: 320044, Format: "wav", DurationSecs: 10},
				Pricing:  &event.Pricing{PerHour: 0.4, Multiplier: 1, Currency: "USD"},
				Options:  event.Options{Model: "scribe_v1", Diarize: true, Language: "en"},
				Metadata: map[string]string{"customer": "acme"}, At: at(s)}}
	}
	words, err := json.Marshal(wordsA())
	require.NoError(t, err)
	tr := fmt.Sprintf(`{"language_code":"en","language_probability":0.99,"text":%q,"words":%s,"transcription_id":"tr-a","audio_duration_secs":10}`,
		sentenceA, words)
	evs := []*event.Event{
		job("job-a", "support-call.wav", 0), job("job-b", "broken.wav", 1), job("job-c", "waiting.wav", 2),
		{V: event.Version, Type: event.TypeSubmitted, JobID: "job-a", RequestID: "req-a", TranscriptionID: "tr-a", At: at(10), Process: "submitter", ConvertCalls: 1},
		{V: event.Version, Type: event.TypeFailed, JobID: "job-b", At: at(11), Process: "submitter", Error: "convert: 422 unsupported audio"},
		{V: event.Version, Type: event.TypeCompleted, JobID: "job-a", RequestID: "req-a", At: at(20), Process: "ingress",
			Transcription: json.RawMessage(tr), WebhookMetadata: json.RawMessage(`{"job_id":"job-a"}`)},
	}
	// job-c has other audio: only job-a's is stored.
	evs[2].Job.Source.Object = strings.Repeat("0", 64)
	require.NoError(t, st.Apply(ctx, evs))
	require.NoError(t, st.DeadLetter(ctx, store.DeadLetter{
		Stream: event.StreamEvents, Subject: "stt.events.queued", MsgID: "dead-1",
		Data: []byte(`{"v":1,"type":"queued","job_id":"job-dl"}`), Err: "event queued: missing job", Attempts: 1,
	}))
}

type request struct {
	method, path string
	form         url.Values
	header       http.Header
	auth         string // "token", "basic", "" (none)
}

type response struct {
	status int
	header http.Header
	body   string
}

// noRedirect keeps 303s visible to the test.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (b *testBundle) do(t *testing.T, r request) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequest(r.method, b.srv.URL+r.path, body)
	require.NoError(t, err)
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	switch r.auth {
	case "token":
		req.Header.Set("Authorization", "Bearer "+testToken)
	case "basic":
		req.SetBasicAuth(testUser, testPassword)
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(data)}
}

func (b *testBundle) get(t *testing.T, path string) response {
	t.Helper()
	return b.do(t, request{path: path, auth: "token"})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the form token from a page that has a form.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(t, m, "no CSRF token in the page")
	return m[1]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
