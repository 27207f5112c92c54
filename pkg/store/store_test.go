package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestOpenSessionSettings(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	var stmt, idle string
	require.NoError(t, st.Pool().QueryRow(ctx, "SHOW statement_timeout").Scan(&stmt))
	require.NoError(t, st.Pool().QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&idle))
	require.Equal(t, "30s", stmt)
	require.Equal(t, "1min", idle)
}

func TestOpenDeadDatabaseFailsFast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections.
	st, err := store.Open(ctx, "postgres://scribeq:hunter2@127.0.0.1:1/scribeq?sslmode=disable&connect_timeout=5", nil)
	require.Nil(t, st)
	require.ErrorContains(t, err, "store: connect to 127.0.0.1:1/scribeq")
	require.NotContains(t, err.Error(), "hunter2")

	_, err = store.Open(ctx, "postgres://u:hunter2@host:notaport/db", nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t) // migrated from the template
	count := func(names ...string) int {
		st, err := store.Open(ctx, url, nil)
		require.NoError(t, err)
		defer st.Close()
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
			WHERE table_schema = 'public' AND table_name = ANY($1)`, names).Scan(&n))
		return n
	}
	initTables := []string{"jobs", "transcripts", "job_events", "dead_letters"}
	newRelations := []string{"batches", "transcript_chunks", "language_configs", "transcript_words", "transcript_segments", "job_summary"}
	run := func(cmd string) string {
		var out bytes.Buffer
		require.NoError(t, store.Migrate(ctx, url, cmd, &out), cmd)
		return out.String()
	}
	const when = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`

	require.Regexp(t, `^applied\s+`+when+`\s+00001_init.sql\napplied\s+`+when+`\s+00002_batches_search_views.sql\n`+
		`applied\s+`+when+`\s+00003_lz4_transcripts.sql\n$`, run("status"))
	require.Equal(t, "no pending migrations\n", run("up"), "nothing to migrate, no chunks to build")
	require.Equal(t, "l", compression(t, url), "CI's Postgres 15 is built with lz4")

	require.Contains(t, run("down"), "00003_lz4_transcripts.sql")
	require.Equal(t, "", compression(t, url))
	require.Contains(t, run("down"), "00002_batches_search_views.sql")
	require.Equal(t, 4, count(initTables...))
	require.Zero(t, count(newRelations...))
	require.Contains(t, run("down"), "00001_init.sql")
	require.Zero(t, count(initTables...))
	require.Regexp(t, `^pending\s+-\s+00001_init.sql\npending\s+-\s+00002_batches_search_views.sql\n`+
		`pending\s+-\s+00003_lz4_transcripts.sql\n$`, run("status"))
	require.ErrorContains(t, store.Migrate(ctx, url, "down", nil), "no migration to roll back")

	out := run("up")
	require.Contains(t, out, "00001_init.sql")
	require.Contains(t, out, "00002_batches_search_views.sql")
	require.Contains(t, out, "00003_lz4_transcripts.sql")
	require.Equal(t, 4, count(initTables...))
	require.Equal(t, len(newRelations), count(newRelations...))
	require.NoError(t, store.Migrate(ctx, url, "up", nil), "nil writer")

	require.ErrorContains(t, store.Migrate(ctx, url, "sideways", nil), `unknown command "sideways"`)
}

func TestDeadLetterIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	d := store.DeadLetter{
		Stream: "EVENTS", Subject: "stt.events.completed", MsgID: "req-1:completed",
		Headers: map[string][]string{"Nats-Msg-Id": {"req-1:completed"}, "X-Odd": {"nul\x00byte"}},
		Data:    []byte{0x00, 0xff, '{'}, Err: "decode event: bad\x00 \xffbytes", Attempts: 3,
	}
	require.NoError(t, st.DeadLetter(ctx, d))
	again := d
	again.Err, again.Attempts = "another error", 9
	require.NoError(t, st.DeadLetter(ctx, again), "a redelivered poison message")

	var n, attempts int
	var data []byte
	var errText, hdr string
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) OVER (), attempts, data, error, headers->'Nats-Msg-Id'->>0
		FROM dead_letters`).Scan(&n, &attempts, &data, &errText, &hdr))
	require.Equal(t, 1, n)
	require.Equal(t, 3, attempts, "the first record is kept")
	require.Equal(t, d.Data, data, "raw bytes kept exactly")
	require.Contains(t, errText, "decode event: bad")
	require.Equal(t, "req-1:completed", hdr)

	noID := store.DeadLetter{Stream: "EVENTS", Subject: "stt.events.queued", Data: []byte("x"), Err: "e"}
	require.NoError(t, st.DeadLetter(ctx, noID))
	require.NoError(t, st.DeadLetter(ctx, noID))
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT count(*) FROM dead_letters").Scan(&n))
	require.Equal(t, 3, n, "without a message id nothing can be deduplicated")
}

func TestHasTranscript(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	h := newHistory()
	ok, err := st.HasTranscript(ctx, "req-x")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, st.Apply(ctx, h.canonical()))
	ok, err = st.HasTranscript(ctx, "req-x")
	require.NoError(t, err)
	require.True(t, ok)
}

// Connections die (server restart, failover, idle kill); Apply retries the
// whole transaction on a fresh one.
func TestApplyRetriesAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	h := newHistory()
	require.NoError(t, st.Apply(ctx, []*event.Event{h.qA}))

	killer, err := pgx.Connect(ctx, st.Pool().Config().ConnConfig.ConnString())
	require.NoError(t, err)
	defer func() { _ = killer.Close(ctx) }()
	var killed int
	require.NoError(t, killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed))
	require.Positive(t, killed)

	require.NoError(t, st.Apply(ctx, []*event.Event{h.sA}))
	var state string
	require.NoError(t, st.Pool().QueryRow(ctx, "SELECT state FROM jobs WHERE job_id = 'job-a'").Scan(&state))
	require.Equal(t, "submitted", state)
}

// compression is the compression method of transcripts.payload: "l" for
// lz4, "" for the server's default.
func compression(t *testing.T, url string) string {
	t.Helper()
	st, err := store.Open(t.Context(), url, nil)
	require.NoError(t, err)
	defer st.Close()
	var c string
	require.NoError(t, st.Pool().QueryRow(t.Context(), `SELECT attcompression::text FROM pg_attribute
		WHERE attrelid = 'transcripts'::regclass AND attname = 'payload'`).Scan(&c))
	return c
}
