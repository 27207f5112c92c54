package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/doctor"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testKey    = "sk_doctor_test_key"
	testSecret = "whsec_doctor_test_secret"
)

// testBundle is a healthy deployment: NATS with everything a worker
// creates, a migrated database, the ingress over HTTP and the emulator
// whose one webhook points at it.
type testBundle struct {
	q          *queue.Queue
	em         *emulator.Server
	dbURL      string
	webhookURL string
	cfg        doctor.Config
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := t.Context()
	q := natstest.Queue(t, queue.Config{})
	_, err := q.SubmitterConsumer(ctx)
	require.NoError(t, err)
	_, err = q.SinkConsumer(ctx)
	require.NoError(t, err)

	in, err := ingress.New(q, ingress.Config{Secrets: []string{testSecret}})
	require.NoError(t, err)
	ingressSrv := httptest.NewServer(in)
	t.Cleanup(ingressSrv.Close)
	webhookURL := ingressSrv.URL + "/webhooks/elevenlabs"

	em, apiURL := startEmulator(t, webhookURL)
	db := pgtest.NewDB(t)
	return &testBundle{
		q: q, em: em, dbURL: db, webhookURL: webhookURL,
		cfg: doctor.Config{
			NatsURL:     q.NC.ConnectedUrl(),
			DatabaseURL: db,
			APIKey:      testKey,
			BaseURL:     apiURL,
			WebhookURL:  webhookURL,
			Timeout:     15 * time.Second,
		},
	}
}

func startEmulator(t *testing.T, webhookURL string) (*emulator.Server, string) {
	t.Helper()
	em, err := emulator.New(emulator.Config{APIKeys: []string{testKey}, WebhookURL: webhookURL, WebhookSecret: testSecret})
	require.NoError(t, err)
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = em.Close(ctx)
	})
	return em, srv.URL
}

// deadURL is an address nothing listens on.
func deadURL(t *testing.T, scheme string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return scheme + "://" + addr
}

// requireCheck asserts one check's status and that a problem comes with a
// fix mentioning fixHint.
func requireCheck(t *testing.T, r doctor.Report, group, name string, want doctor.Status, fixHint string) *doctor.Result {
	t.Helper()
	res := r.Find(group, name)
	require.NotNil(t, res, "no check %s/%s in %+v", group, name, r.Results)
	require.Equal(t, want, res.Status, "%s/%s: %s", group, name, res.Detail)
	if want == doctor.Warn || want == doctor.Fail {
		require.NotEmpty(t, res.Fix, "%s/%s has no fix", group, name)
		require.Contains(t, res.Fix, fixHint)
	}
	return res
}

func TestHealthy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := doctor.Run(t.Context(), b.cfg)
	for _, res := range r.Results {
		require.Equal(t, doctor.OK, res.Status, "%s/%s: %s (fix: %s)", res.Group, res.Name, res.Detail, res.Fix)
	}
	require.False(t, r.Failed())
	for _, name := range []string{"connection", "jetstream", "stream JOBS", "stream EVENTS", "object store AUDIO",
		"object store PAYLOADS", "kv INTAKE", "kv SUBMISSIONS", "kv WEBHOOKS", "kv SLOTS", "consumer submitter", "consumer sink"} {
		requireCheck(t, r, doctor.GroupNATS, name, doctor.OK, "")
	}
	requireCheck(t, r, doctor.GroupPostgres, "connection", doctor.OK, "")
	requireCheck(t, r, doctor.GroupPostgres, "migrations", doctor.OK, "")
	requireCheck(t, r, doctor.GroupPostgres, "dead letters", doctor.OK, "")
	requireCheck(t, r, doctor.GroupElevenLabs, "api key", doctor.OK, "")
	wh := requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.OK, "")
	require.Contains(t, wh.Detail, b.webhookURL)
	reach := requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.OK, "")
	require.Contains(t, reach.Detail, "401")

	var text bytes.Buffer
	require.NoError(t, r.WriteText(&text))
	t.Log("\n" + text.String())
	require.Contains(t, text.String(), "✓ consumer sink")
	require.Contains(t, text.String(), "all checks passed")
	require.NotContains(t, text.String(), testKey)
}

// TestPendingCounts: the consumer line prints what waits, and a
// consumer with work but no worker pulling is a warning.
func TestPendingCounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 3 {
		require.NoError(t, b.q.PublishRaw(t.Context(), event.SubjectJobs, []byte(`{}`), fmt.Sprintf("job-%d", i)))
	}
	cfg := b.cfg
	cfg.IdleAfter = time.Nanosecond
	r := doctor.Run(t.Context(), cfg)
	res := requireCheck(t, r, doctor.GroupNATS, "consumer submitter", doctor.Warn, "scribeq submitter")
	require.Contains(t, res.Detail, "pending 3, ack pending 0, redelivered 0")
	require.Contains(t, res.Detail, "no worker is pulling")
	require.False(t, r.Failed(), "a warning alone does not fail")
	requireCheck(t, r, doctor.GroupNATS, "stream JOBS", doctor.OK, "")
	require.Contains(t, r.Find(doctor.GroupNATS, "stream JOBS").Detail, "3 msgs")
}

func TestMissingStreamAndConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	require.NoError(t, b.q.JS.DeleteStream(ctx, event.StreamEvents))
	require.NoError(t, b.q.JS.DeleteConsumer(ctx, event.StreamJobs, queue.ConsumerSubmitter))
	r := doctor.Run(ctx, b.cfg)
	require.True(t, r.Failed())
	requireCheck(t, r, doctor.GroupNATS, "stream EVENTS", doctor.Fail, "creates the streams")
	requireCheck(t, r, doctor.GroupNATS, "consumer sink", doctor.Skip, "")
	requireCheck(t, r, doctor.GroupNATS, "consumer submitter", doctor.Fail, "scribeq submitter")
	requireCheck(t, r, doctor.GroupNATS, "stream JOBS", doctor.OK, "")

	var text bytes.Buffer
	require.NoError(t, r.WriteText(&text))
	t.Log("\n" + text.String())
	require.Contains(t, text.String(), "✗ stream EVENTS")
	require.Contains(t, text.String(), "fix: start any scribeq worker")
	require.Contains(t, text.String(), "2 checks failed")
}

func TestMemoryBucket(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	require.NoError(t, b.q.JS.DeleteKeyValue(ctx, event.BucketWebhooks))
	_, err := b.q.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: event.BucketWebhooks, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	cfg := b.cfg
	cfg.Replicas = 3
	r := doctor.Run(ctx, cfg)
	res := requireCheck(t, r, doctor.GroupNATS, "kv WEBHOOKS", doctor.Fail, "file storage")
	require.Contains(t, res.Detail, "memory storage")
	require.Contains(t, res.Fix, "SCRIBEQ_REPLICAS=3", "every problem of the check keeps its fix")
	requireCheck(t, r, doctor.GroupNATS, "stream JOBS", doctor.Warn, "SCRIBEQ_REPLICAS=3")
}

func TestNATSDown(t *testing.T) {
	t.Parallel()
	r := doctor.Run(t.Context(), doctor.Config{NatsURL: deadURL(t, "nats"), Skip: []string{"postgres", "elevenlabs", "webhook"}})
	require.True(t, r.Failed())
	requireCheck(t, r, doctor.GroupNATS, "connection", doctor.Fail, "start NATS")
	require.Len(t, r.Results, 4, "one NATS result, then one skip line per skipped group")
	requireCheck(t, r, doctor.GroupPostgres, "all", doctor.Skip, "")
}

func TestJetStreamDisabled(t *testing.T) {
	t.Parallel()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	require.True(t, s.ReadyForConnections(10*time.Second))
	r := doctor.Run(t.Context(), doctor.Config{NatsURL: s.ClientURL(), Skip: []string{"postgres", "elevenlabs", "webhook"}})
	requireCheck(t, r, doctor.GroupNATS, "connection", doctor.OK, "")
	requireCheck(t, r, doctor.GroupNATS, "jetstream", doctor.Fail, "-js")
	require.True(t, r.Failed())
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	exec := func(t *testing.T, url, sql string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(t.Context(), sql, args...)
		require.NoError(t, err)
	}
	run := func(t *testing.T, url string) doctor.Report {
		return doctor.Run(t.Context(), doctor.Config{DatabaseURL: url, Skip: []string{"nats", "elevenlabs", "webhook"}})
	}

	t.Run("PendingMigrations", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		exec(t, url, `DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`)
		r := run(t, url)
		require.True(t, r.Failed())
		res := requireCheck(t, r, doctor.GroupPostgres, "migrations", doctor.Fail, "scribeq migrate up")
		require.Contains(t, res.Detail, "1 pending")
		requireCheck(t, r, doctor.GroupPostgres, "dead letters", doctor.Skip, "")
	})
	t.Run("NoSchema", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		exec(t, url, `DROP TABLE goose_db_version`)
		r := run(t, url)
		res := requireCheck(t, r, doctor.GroupPostgres, "migrations", doctor.Fail, "scribeq migrate up")
		require.Contains(t, res.Detail, "no schema")
		// The doctor only reads: it did not create goose's table.
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var exists bool
		require.NoError(t, conn.QueryRow(t.Context(), `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists))
		require.False(t, exists)
	})
	t.Run("NewerThanBinary", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		exec(t, url, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
		r := run(t, url)
		requireCheck(t, r, doctor.GroupPostgres, "migrations", doctor.Warn, "upgrade this binary")
		require.False(t, r.Failed())
	})
	t.Run("DeadLetters", func(t *testing.T) {
		t.Parallel()
		url := pgtest.NewDB(t)
		exec(t, url, `INSERT INTO dead_letters (stream, subject, data, error) VALUES ('EVENTS', 'stt.events.completed', '\x00', 'boom')`)
		r := run(t, url)
		res := requireCheck(t, r, doctor.GroupPostgres, "dead letters", doctor.Warn, "scribeq dead-letters replay")
		require.Contains(t, res.Detail, "1 message")
	})
	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		url := strings.Replace(deadURL(t, "postgres"), "postgres://", "postgres://scribeq:s3cret-pw@", 1) + "/scribeq?sslmode=disable&connect_timeout=5"
		r := run(t, url)
		res := requireCheck(t, r, doctor.GroupPostgres, "connection", doctor.Fail, "DATABASE_URL")
		require.NotContains(t, res.Detail, "s3cret-pw")
		require.True(t, r.Failed())
	})
	t.Run("NoURL", func(t *testing.T) {
		t.Parallel()
		r := run(t, "")
		requireCheck(t, r, doctor.GroupPostgres, "connection", doctor.Fail, "DATABASE_URL")
	})
}

func TestElevenLabs(t *testing.T) {
	t.Parallel()
	// Only the ElevenLabs and webhook groups: NATS and Postgres are
	// covered above.
	only := func(cfg doctor.Config) doctor.Config {
		cfg.Skip = []string{"nats", "postgres"}
		return cfg
	}

	t.Run("BadKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cfg := only(b.cfg)
		cfg.APIKey = "sk_not_the_key"
		r := doctor.Run(t.Context(), cfg)
		require.True(t, r.Failed())
		res := requireCheck(t, r, doctor.GroupElevenLabs, "api key", doctor.Fail, "ELEVENLABS_API_KEY")
		require.Contains(t, res.Detail, "invalid_api_key")
		require.NotContains(t, res.Detail, "sk_not_the_key")
		require.Nil(t, r.Find(doctor.GroupElevenLabs, "webhook"), "no webhook check without a valid key")
	})
	t.Run("NoKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cfg := only(b.cfg)
		cfg.APIKey = ""
		r := doctor.Run(t.Context(), cfg)
		res := requireCheck(t, r, doctor.GroupElevenLabs, "api key", doctor.Skip, "")
		require.Contains(t, res.Detail, "emulator")
		require.False(t, r.Failed())
	})
	t.Run("AutoDisabled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.em.SetWebhookState(emulator.WebhookState{AutoDisabled: true})
		r := doctor.Run(t.Context(), only(b.cfg))
		require.True(t, r.Failed())
		requireCheck(t, r, doctor.GroupElevenLabs, "api key", doctor.OK, "")
		res := requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.Fail, "re-enable")
		require.Contains(t, res.Detail, "auto-disabled")
	})
	t.Run("Disabled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.em.SetWebhookState(emulator.WebhookState{Disabled: true})
		r := doctor.Run(t.Context(), only(b.cfg))
		requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.Fail, "enable it")
	})
	t.Run("RecentFailure", func(t *testing.T) {
		t.Parallel()
		// The webhook points at a dead address: after one failed
		// delivery the list reports it and the doctor warns.
		dead := deadURL(t, "http") + "/webhooks/elevenlabs"
		em, apiURL := startEmulator(t, dead)
		convert(t, apiURL)
		waitFor(t, "the failed delivery", func() bool {
			l := em.Ledger()
			return len(l) == 1 && l[0].Delivery == "failed"
		})
		r := doctor.Run(t.Context(), doctor.Config{APIKey: testKey, BaseURL: apiURL, Skip: []string{"nats", "postgres"}})
		res := requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.Warn, "reconciler")
		require.Contains(t, res.Detail, "a delivery failed")
	})
	t.Run("NoWebhook", func(t *testing.T) {
		t.Parallel()
		em, err := emulator.New(emulator.Config{APIKeys: []string{testKey}})
		require.NoError(t, err)
		srv := httptest.NewServer(em.Handler())
		t.Cleanup(srv.Close)
		r := doctor.Run(t.Context(), doctor.Config{APIKey: testKey, BaseURL: srv.URL, Skip: []string{"nats", "postgres"}})
		requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.Fail, "Developers → Webhooks")
	})
	t.Run("WrongWebhookID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cfg := only(b.cfg)
		cfg.WebhookID = "wh_other"
		r := doctor.Run(t.Context(), cfg)
		res := requireCheck(t, r, doctor.GroupElevenLabs, "webhook", doctor.Fail, "SCRIBEQ_WEBHOOK_ID")
		require.Contains(t, res.Detail, "wh_emulator")
	})
	t.Run("WebhookPointsElsewhere", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cfg := only(b.cfg)
		cfg.WebhookURL = strings.Replace(b.webhookURL, "/webhooks/elevenlabs", "/hooks/other", 1)
		r := doctor.Run(t.Context(), cfg)
		res := requireCheck(t, r, doctor.GroupElevenLabs, "webhook url", doctor.Fail, "public URL")
		require.Contains(t, res.Detail, b.webhookURL)
		// The same URL answers 404 from the ingress: the wrong path.
		requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.Fail, "SCRIBEQ_WEBHOOK_PATH")
	})
}

func TestWebhookURL(t *testing.T) {
	t.Parallel()
	probe := func(t *testing.T, url string) doctor.Report {
		return doctor.Run(t.Context(), doctor.Config{WebhookURL: url, Skip: []string{"nats", "postgres", "elevenlabs"}})
	}

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		r := probe(t, deadURL(t, "http")+"/webhooks/elevenlabs")
		require.True(t, r.Failed())
		requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.Fail, "reachable")
	})
	t.Run("NotOurIngress", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("welcome to nginx"))
		}))
		t.Cleanup(srv.Close)
		r := probe(t, srv.URL+"/webhooks/elevenlabs")
		res := requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.Fail, "point the URL at the ingress")
		require.Contains(t, res.Detail, "200")
	})
	t.Run("ProxyWithoutIngress", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		requireCheck(t, probe(t, srv.URL+"/webhooks/elevenlabs"), doctor.GroupWebhook, "reachable", doctor.Fail, "start the ingress")
	})
	t.Run("Redirect", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://example.invalid/webhooks/elevenlabs", http.StatusMovedPermanently)
		}))
		t.Cleanup(srv.Close)
		requireCheck(t, probe(t, srv.URL+"/webhooks/elevenlabs"), doctor.GroupWebhook, "reachable", doctor.Fail, "redirects")
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		// An ingress behind TLS whose certificate the doctor trusts: the
		// certificate line reports its expiry (httptest's is valid for
		// years).
		b := setup(t)
		in, err := ingress.New(b.q, ingress.Config{Secrets: []string{testSecret}})
		require.NoError(t, err)
		srv := httptest.NewTLSServer(in)
		t.Cleanup(srv.Close)
		r := doctor.Run(t.Context(), doctor.Config{WebhookURL: srv.URL + "/webhooks/elevenlabs", HTTPClient: srv.Client(),
			Skip: []string{"nats", "postgres", "elevenlabs"}})
		requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.OK, "")
		requireCheck(t, r, doctor.GroupWebhook, "certificate", doctor.OK, "")
		// Without trusting it, the certificate is the problem.
		r = probe(t, srv.URL+"/webhooks/elevenlabs")
		requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.Fail, "certificate")
	})
	t.Run("NoURL", func(t *testing.T) {
		t.Parallel()
		r := probe(t, "")
		requireCheck(t, r, doctor.GroupWebhook, "reachable", doctor.Skip, "")
		require.False(t, r.Failed())
	})
}

func TestJSON(t *testing.T) {
	t.Parallel()
	r := doctor.Run(t.Context(), doctor.Config{NatsURL: deadURL(t, "nats"), Skip: []string{"postgres", "elevenlabs", "webhook"}})
	var buf bytes.Buffer
	require.NoError(t, r.WriteJSON(&buf))
	var got struct {
		OK      bool            `json:"ok"`
		Results []doctor.Result `json:"results"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	require.False(t, got.OK)
	require.Equal(t, r.Results, got.Results)
	require.Equal(t, doctor.Fail, got.Results[0].Status)
	require.NotEmpty(t, got.Results[0].Fix)
}

// convert sends one webhook=true job to the emulator.
func convert(t *testing.T, apiURL string) {
	t.Helper()
	c, err := elevenlabs.New(elevenlabs.Config{BaseURL: apiURL, APIKey: testKey})
	require.NoError(t, err)
	audio := []byte("not really audio")
	_, err = c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: bytes.NewReader(audio), FileSize: int64(len(audio)), Webhook: true,
	})
	require.NoError(t, err)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
