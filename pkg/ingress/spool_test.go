package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/natsembed"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// restartable is a NATS server that can be stopped and started again on
// the same port and store, as after an outage.
type restartable struct {
	t    *testing.T
	dir  string
	port int
	mu   sync.Mutex
	s    *server.Server
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	r := &restartable{t: t, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	r.t.Helper()
	s, err := natsembed.Start(natsembed.Config{StoreDir: r.dir, Port: r.port})
	require.NoError(r.t, err)
	r.mu.Lock()
	r.s = s
	r.mu.Unlock()
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil {
		r.s.Shutdown()
		r.s.WaitForShutdown()
		r.s = nil
	}
}

type readiness struct {
	code         int
	Status       string `json:"status"`
	SpoolPending int    `json:"spool_pending"`
	SpoolBytes   int64  `json:"spool_bytes"`
}

func ready(t *testing.T, base string) readiness {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var r readiness
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	r.code = resp.StatusCode
	return r
}

func postStatus(t *testing.T, url string, b []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set(elevenlabs.SignatureHeader, sig)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out["status"]
}

func streamMsgs(t *testing.T, q *queue.Queue) uint64 {
	t.Helper()
	st, err := q.JS.Stream(context.Background(), event.StreamEvents)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// The outage the spool exists for: NATS goes away, webhooks are still
// answered 200 because they are on disk, and once NATS is back each one
// reaches EVENTS exactly once — a large one through the claim check.
func TestSpoolWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	ns := newRestartable(t)
	nc, err := queue.Connect(ns.s.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{ClaimCheckBytes: 4096})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	spoolDir := filepath.Join(t.TempDir(), "spool")
	h, err := ingress.New(q, ingress.Config{
		Secrets: []string{"whsec"}, SpoolDir: spoolDir, SpoolRetry: 20 * time.Millisecond, PublishTimeout: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	url := srv.URL + "/webhooks/elevenlabs"

	ns.stop()
	require.Eventually(t, func() bool { return !nc.IsConnected() }, 10*time.Second, 10*time.Millisecond)

	small := body("req-s", `{"job_id":"job-s"}`, "hello")
	bigText := strings.Repeat("lorem ipsum ", 2000)
	big := body("req-b", `{"job_id":"job-b"}`, bigText)
	for _, b := range [][]byte{small, big} {
		code, status := postStatus(t, url, b, elevenlabs.Sign("whsec", time.Now(), b))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "spooled", status)
	}
	r := ready(t, srv.URL)
	require.Equal(t, http.StatusOK, r.code, "an ingress that can spool stays in service")
	require.Contains(t, r.Status, "spooling")
	require.Equal(t, 2, r.SpoolPending)
	require.Positive(t, r.SpoolBytes)

	ns.start()
	require.Eventually(t, func() bool { return ready(t, srv.URL).SpoolPending == 0 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(2), streamMsgs(t, q))

	// Delivered again once NATS is up: still one event per request id.
	code, status := postStatus(t, url, small, elevenlabs.Sign("whsec", time.Now(), small))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", status)
	require.Equal(t, uint64(2), streamMsgs(t, q), "exactly once on EVENTS")

	evs := events(t, q)
	require.Len(t, evs, 2)
	byReq := map[string]*event.Event{}
	for _, ev := range evs {
		byReq[ev.RequestID] = ev
	}
	require.Equal(t, "job-s", byReq["req-s"].JobID)
	var tr struct{ Text string }
	require.NoError(t, json.Unmarshal(byReq["req-b"].Transcription, &tr))
	require.Equal(t, bigText, tr.Text, "the large event went through the claim check whole")

	for job, req := range map[string]string{"job-s": "req-s", "job-b": "req-b"} {
		e, err := q.Webhooks.Get(context.Background(), job)
		require.NoError(t, err, "replay marks the webhook received")
		require.Equal(t, req, string(e.Value()))
	}
	segs, err := filepath.Glob(filepath.Join(spoolDir, "*.seg"))
	require.NoError(t, err)
	require.Empty(t, segs, "a drained spool leaves no segments")
	r = ready(t, srv.URL)
	require.Equal(t, "ready", r.Status)
	require.Zero(t, r.SpoolBytes)
}

// A spool left by a crashed ingress is replayed by the next one.
func TestSpoolLeftByEarlierRunIsReplayed(t *testing.T) {
	t.Parallel()
	s := natstest.Server(t)
	nc, err := queue.Connect(s.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	spoolDir := t.TempDir()

	// First run: the stream is gone, so the publish fails and the event is
	// spooled, and the replay keeps failing until the process stops.
	cfg := ingress.Config{Secrets: []string{"whsec"}, SpoolDir: spoolDir, SpoolRetry: 20 * time.Millisecond, PublishTimeout: 300 * time.Millisecond}
	require.NoError(t, q.JS.DeleteStream(context.Background(), event.StreamEvents))
	h, err := ingress.New(q, cfg)
	require.NoError(t, err)
	b := body("req-r", `{"job_id":"job-r"}`, "again")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/elevenlabs", bytes.NewReader(b))
	req.Header.Set(elevenlabs.SignatureHeader, elevenlabs.Sign("whsec", time.Now(), b))
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "spooled")
	require.NoError(t, h.Close())

	// Next run, with the stream back.
	q2, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	h2, err := ingress.New(q2, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h2.Close()) })
	require.Eventually(t, func() bool { return streamMsgs(t, q2) == 1 }, 20*time.Second, 20*time.Millisecond)
	evs := events(t, q2)
	require.Len(t, evs, 1)
	require.Equal(t, "req-r", evs[0].RequestID)
}

func TestSpoolFullAndNATSDownIsUnavailable(t *testing.T) {
	t.Parallel()
	s := natstest.Server(t)
	nc, err := queue.Connect(s.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	h, err := ingress.New(q, ingress.Config{
		Secrets: []string{"whsec"}, SpoolDir: t.TempDir(), SpoolMaxBytes: 200, PublishTimeout: 300 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	s.Shutdown()
	s.WaitForShutdown()
	require.Eventually(t, func() bool { return !nc.IsConnected() }, 10*time.Second, 10*time.Millisecond)
	b := body("req-f", `{"job_id":"job-f"}`, strings.Repeat("x", 300))
	code, _ := postStatus(t, srv.URL+"/webhooks/elevenlabs", b, elevenlabs.Sign("whsec", time.Now(), b))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Zero(t, ready(t, srv.URL).SpoolPending)
}
