package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// insufficientPrivilege is SQLSTATE 42501: what every refusal below must
// be, so that a test cannot pass on a typo in its SQL.
const insufficientPrivilege = "42501"

// bundle is one test's database and its three roles, named uniquely for
// this run: roles are global to the server, which other tests share.
type bundle struct {
	serverBase string    // pgtest's database: lends us the server and a superuser
	db         string    // the test's own database
	admin      string    // URL on db of the role that runs roles.sql
	adminConn  *pgx.Conn // a session on admin
	rolesSQL   string    // roles.sql with this run's role names

	migrate, sink, read          string // role names
	migrateURL, sinkURL, readURL string
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// setup creates an empty database (no schema) and, when cleaning up, drops
// it and this run's roles. Postgres comes from pgtest, as every package's
// tests get it; its migrated database only lends us the server and a
// superuser. With managed, the database belongs to an admin role that is
// no superuser but may create roles, as on a managed Postgres service, and
// b.admin is that role.
func setup(t *testing.T, managed bool) *bundle {
	t.Helper()
	ctx := ctxT(t)
	base := pgtest.NewDB(t)
	suffix := strings.ToLower(rand.Text()[:10])
	b := &bundle{
		migrate: "scribeq_migrate_" + suffix, sink: "scribeq_sink_" + suffix, read: "scribeq_read_" + suffix,
		db: "scribeq_roles_" + suffix, serverBase: base,
	}
	raw, err := os.ReadFile("roles.sql")
	require.NoError(t, err)
	b.rolesSQL = strings.NewReplacer("scribeq_migrate", b.migrate, "scribeq_sink", b.sink, "scribeq_read", b.read).Replace(string(raw))

	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	var adminRole, adminPassword string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		defer func() { _ = conn.Close(ctx) }()
		// The database first: the roles own objects in it and hold grants on it.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(b.db)+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", b.db, err)
		}
		for _, r := range []string{b.migrate, b.sink, b.read, adminRole} {
			if r == "" {
				continue
			}
			if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	if managed {
		adminRole, adminPassword = "scribeq_admin_"+suffix, strings.ToLower(rand.Text())
		_, err = conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", ident(adminRole), adminPassword))
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "CREATE DATABASE "+ident(b.db)+" OWNER "+ident(adminRole))
	} else {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+ident(b.db))
	}
	require.NoError(t, err)
	b.admin = withUser(t, base, b.db, adminRole, adminPassword)
	b.adminConn, err = pgx.Connect(ctx, b.admin)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.adminConn.Close(context.Background()) })
	return b
}

// applyRoles runs roles.sql as the operator would (one transaction), then
// gives the roles passwords, which roles.sql leaves to the operator.
func (b *bundle) applyRoles(t *testing.T) {
	t.Helper()
	ctx := ctxT(t)
	// Without arguments pgx sends the file as one simple-protocol query:
	// every statement, one implicit transaction, as psql -1 -f does.
	_, err := b.adminConn.Exec(ctx, b.rolesSQL)
	require.NoError(t, err, "roles.sql")
	urls := map[string]*string{b.migrate: &b.migrateURL, b.sink: &b.sinkURL, b.read: &b.readURL}
	for role, u := range urls {
		pw := strings.ToLower(rand.Text())
		_, err := b.adminConn.Exec(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", ident(role), pw))
		require.NoError(t, err)
		*u = withUser(t, b.serverBase, b.db, role, pw)
	}
}

// withUser points a URL (or keyword/value string) at db as user.
func withUser(t *testing.T, base, db, user, password string) string {
	t.Helper()
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		require.NoError(t, err)
		u.Path, u.RawPath = "/"+db, ""
		if user != "" {
			u.User = url.UserPassword(user, password)
		}
		return u.String()
	}
	s := base + " dbname=" + db
	if user != "" {
		s += " user=" + user + " password=" + password
	}
	return s
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// connect opens a plain session as a role, for trying statements the
// scribeq code never runs.
func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	ctx := ctxT(t)
	c, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// refused runs each statement on its own and expects a privilege error.
func refused(t *testing.T, c *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := c.Exec(ctxT(t), s)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != insufficientPrivilege {
			t.Errorf("%s: %s: want a privilege error (42501), got %v", who, s, err)
		}
	}
}

func allowed(t *testing.T, c *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := c.Exec(ctxT(t), s)
		require.NoError(t, err, "%s: %s", who, s)
	}
}

// notOwnedByMigrate lists every relation, function and type in public whose owner
// is not the migration role.
func (b *bundle) notOwnedByMigrate(t *testing.T) []string {
	t.Helper()
	rows, err := b.adminConn.Query(ctxT(t), `
		WITH m AS (SELECT (SELECT oid FROM pg_roles WHERE rolname = $1) AS oid)
		SELECT c.relkind::text || ' ' || c.relname FROM pg_class c, m
		WHERE c.relnamespace = 'public'::regnamespace AND c.relowner IS DISTINCT FROM m.oid
		UNION ALL
		SELECT 'function ' || p.proname FROM pg_proc p, m
		WHERE p.pronamespace = 'public'::regnamespace AND p.proowner IS DISTINCT FROM m.oid
		UNION ALL
		SELECT 'schema public' FROM pg_namespace, m WHERE nspname = 'public' AND nspowner IS DISTINCT FROM m.oid`, b.migrate)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// history is a job that completes and one that fails, through the events
// the sink really receives.
func history(prefix string) []*event.Event {
	ev := func(typ event.Type, job, req string, sec int, process string) *event.Event {
		return &event.Event{V: event.Version, Type: typ, JobID: job, RequestID: req, At: t0.Add(time.Duration(sec) * time.Second), Process: process}
	}
	job := func(id string) *event.Job {
		return &event.Job{V: event.Version, JobID: id, BatchID: prefix + "batch", BatchName: "interviews",
			Source:  event.Source{Object: "sha-" + id, Path: "/audio/" + id + ".wav", Name: id + ".wav", Size: 1000, DurationSecs: 2},
			Options: event.Options{Model: "scribe_v1"}, Pricing: &event.Pricing{PerHour: 0.4, Multiplier: 1, Currency: "USD"}, At: t0}
	}
	a, b := prefix+"job-a", prefix+"job-b"
	qa := ev(event.TypeQueued, a, "", 0, "intake")
	qa.Job = job(a)
	qb := ev(event.TypeQueued, b, "", 0, "intake")
	qb.Job = job(b)
	sa := ev(event.TypeSubmitted, a, prefix+"req-a", 1, "submitter")
	sa.TranscriptionID = prefix + "tr-a"
	ca := ev(event.TypeCompleted, a, prefix+"req-a", 5, "ingress")
	ca.Transcription = json.RawMessage(`{"language_code":"en","language_probability":0.99,"text":"hello quiet world",
		"words":[{"text":"hello","start":0,"end":0.5,"type":"word"},{"text":" ","start":0.5,"end":0.5,"type":"spacing"},
		{"text":"quiet","start":0.5,"end":1,"type":"word"},{"text":" ","start":1,"end":1,"type":"spacing"},
		{"text":"world","start":1,"end":1.5,"type":"word"}],"transcription_id":"` + prefix + `tr-a","audio_duration_secs":2}`)
	ca.WebhookMetadata = json.RawMessage(`{"job_id":"` + a + `"}`)
	fb := ev(event.TypeFailed, b, "", 2, "submitter")
	fb.Error = "convert: 422 unsupported audio"
	return []*event.Event{qa, qb, sa, ca, fb}
}

// sinkWrites does what the sink does, as the sink's role: check the
// schema at start, apply events, record and replay a dead letter.
func sinkWrites(t *testing.T, sinkURL, prefix string) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, store.Migrate(ctx, sinkURL, "up", nil), "the sink's start-up schema check")
	st, err := store.Open(ctx, sinkURL, nil)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Apply(ctx, history(prefix)))
	require.NoError(t, st.Apply(ctx, history(prefix)), "a replay")
	require.NoError(t, st.DeadLetter(ctx, store.DeadLetter{Stream: "EVENTS", Subject: "stt.events.completed",
		MsgID: prefix + "poison", Data: []byte("{not json"), Err: "decode: invalid character", Attempts: 1}))
	var id int64
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT id FROM dead_letters WHERE msg_id = $1`, prefix+"poison").Scan(&id))
	require.NoError(t, st.MarkReplayed(ctx, id, t0.Add(time.Hour)))
}

// reads runs every query the read-only commands and the reconciler make.
func reads(t *testing.T, readURL, prefix string) {
	t.Helper()
	ctx := ctxT(t)
	db, err := query.Open(ctx, readURL)
	require.NoError(t, err)
	defer db.Close()

	counts, err := db.Status(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, counts["completed"], int64(1))
	require.GreaterOrEqual(t, counts["failed"], int64(1))

	rows, _, err := db.Jobs(ctx, query.Filter{JobIDs: []string{prefix + "job-a", prefix + "job-b"}}, query.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, rows, 2)

	hits, err := db.Search(ctx, "quiet", query.Filter{Language: "english"}, 10)
	require.NoError(t, err)
	require.NotEmpty(t, hits)
	require.Contains(t, hits[0].Snippet, "quiet")

	j, err := db.Show(ctx, prefix+"job-a", true)
	require.NoError(t, err)
	require.Equal(t, "completed", j.State)
	require.NotNil(t, j.Transcript)
	require.NotEmpty(t, j.History)

	batches, err := db.Batches(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, batches)

	n := 0
	require.NoError(t, db.Transcripts(ctx, query.Filter{JobIDs: []string{prefix + "job-a"}}, func(*query.TranscriptRow) error {
		n++
		return nil
	}))
	require.Equal(t, 1, n)

	// The reconciler's query.
	_, err = db.Stuck(ctx, query.StuckFilter{Now: t0.Add(24 * time.Hour), Limit: 10})
	require.NoError(t, err)

	dls, err := db.DeadLetters(ctx, 10, true)
	require.NoError(t, err)
	require.NotEmpty(t, dls)
	require.NotNil(t, dls[0].ReplayedAt)
}

// denials proves what the sink and the reader cannot do, through plain
// sessions that try it outright.
func denials(t *testing.T, b *bundle) {
	t.Helper()
	sink := connect(t, b.sinkURL)
	refused(t, sink, "sink",
		`CREATE TABLE evil (x int)`,
		`CREATE TEMP TABLE evil (x int)`,
		`CREATE SCHEMA evil`,
		`CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`CREATE INDEX evil ON jobs (error)`,
		`DROP TABLE jobs`,
		`DROP VIEW job_summary`,
		`ALTER TABLE jobs ADD COLUMN evil int`,
		`ALTER TABLE transcripts DISABLE TRIGGER ALL`,
		`TRUNCATE job_events`,
		// What migrated stays migrated, and reference data stays as shipped.
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)`,
		`DELETE FROM goose_db_version`,
		`UPDATE language_configs SET ts_config = 'simple'`,
	)
	err := store.Migrate(ctxT(t), b.sinkURL, "down", nil)
	require.Error(t, err, "the sink role rolled a migration back")
	require.Contains(t, err.Error(), "must be owner")

	read := connect(t, b.readURL)
	// Read-only transactions alone would refuse writes too; switching them
	// off shows that the privileges refuse them as well.
	allowed(t, read, "read", `SET default_transaction_read_only = off`)
	refused(t, read, "read",
		`INSERT INTO jobs (job_id, state, state_rank) VALUES ('evil', 'queued', 0)`,
		`UPDATE jobs SET state = 'failed', state_rank = 3`,
		`DELETE FROM transcripts`,
		`INSERT INTO dead_letters (stream, subject, data, error) VALUES ('x', 'y', '', 'z')`,
		`UPDATE dead_letters SET replayed_at = now()`,
		`SELECT nextval('job_events_id_seq')`,
		`TRUNCATE jobs`,
		`CREATE TABLE evil (x int)`,
		`CREATE TEMP TABLE evil (x int)`,
		`DROP TABLE jobs`,
	)
	// And a read session starts read-only even when the client forgets.
	fresh := connect(t, b.readURL)
	var ro string
	require.NoError(t, fresh.QueryRow(ctxT(t), `SHOW default_transaction_read_only`).Scan(&ro))
	require.Equal(t, "on", ro)
}

// TestRolesOnAFreshDatabase is the order deploy/README.md gives: roles,
// migrations as scribeq_migrate, roles again; then each worker with its
// own role.
func TestRolesOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	b.applyRoles(t)
	var out bytes.Buffer
	require.NoError(t, store.Migrate(ctxT(t), b.migrateURL, "up", &out), "migrate as %s", b.migrate)
	require.Contains(t, out.String(), "00001_init.sql")
	b.applyRoles(t) // again: narrows goose's table and language_configs, and must be idempotent
	require.Empty(t, b.notOwnedByMigrate(t))

	sinkWrites(t, b.sinkURL, "")
	reads(t, b.readURL, "")
	denials(t, b)

	t.Run("LaterMigrationsGetTheGrants", func(t *testing.T) {
		// What a new migration would do, as the role that runs them.
		mig := connect(t, b.migrateURL)
		allowed(t, mig, "migrate",
			`CREATE TABLE later_notes (id bigserial PRIMARY KEY, job_id text NOT NULL, note text)`,
			`CREATE VIEW later_view AS SELECT job_id, count(*) AS n FROM later_notes GROUP BY job_id`,
			`CREATE FUNCTION later_fn(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1'`,
		)
		sink := connect(t, b.sinkURL)
		allowed(t, sink, "sink",
			`INSERT INTO later_notes (job_id, note) VALUES ('job-a', 'hi')`,
			`UPDATE later_notes SET note = 'hello'`,
			`DELETE FROM later_notes WHERE note = 'nothing'`,
			`SELECT later_fn(1)`,
		)
		refused(t, sink, "sink", `DROP TABLE later_notes`, `ALTER TABLE later_notes ADD COLUMN evil int`)
		read := connect(t, b.readURL)
		allowed(t, read, "read", `SELECT * FROM later_notes`, `SELECT * FROM later_view`, `SELECT later_fn(1)`)
		allowed(t, read, "read", `SET default_transaction_read_only = off`)
		refused(t, read, "read", `INSERT INTO later_notes (job_id) VALUES ('x')`)
	})

	t.Run("ReadOnlyCommands", func(t *testing.T) {
		readCommands(t, b.readURL)
	})
}

// TestRolesOnAMigratedDatabase applies roles.sql to a database that a
// superuser migrated and filled before least privilege: everything must
// change hands, and the migration role must then be able to roll back and
// re-apply every migration it now owns.
func TestRolesOnAMigratedDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	ctx := ctxT(t)
	require.NoError(t, store.Migrate(ctx, b.admin, "up", nil))
	st, err := store.Open(ctx, b.admin, nil)
	require.NoError(t, err)
	require.NoError(t, st.Apply(ctx, history("old-")))
	st.Close()
	require.NotEmpty(t, b.notOwnedByMigrate(t), "the superuser should own the schema before roles.sql")

	b.applyRoles(t)
	require.Empty(t, b.notOwnedByMigrate(t))
	// 00003 alters a table, 00002 drops views, a function and tables: only
	// their owner may. (00001's down would drop the data the reads below
	// look for.)
	for range 2 {
		require.NoError(t, store.Migrate(ctx, b.migrateURL, "down", nil), "roll back as %s", b.migrate)
	}
	require.NoError(t, store.Migrate(ctx, b.migrateURL, "up", nil), "re-apply as %s", b.migrate)
	b.applyRoles(t)

	sinkWrites(t, b.sinkURL, "new-")
	reads(t, b.readURL, "old-")
	reads(t, b.readURL, "new-")
	denials(t, b)
}

// TestRolesAsAManagedServiceAdmin runs roles.sql as a managed service's
// admin: the database's owner with CREATEROLE, not a superuser.
func TestRolesAsAManagedServiceAdmin(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.applyRoles(t)
	require.NoError(t, store.Migrate(ctxT(t), b.migrateURL, "up", nil), "migrate as %s", b.migrate)
	b.applyRoles(t)
	require.Empty(t, b.notOwnedByMigrate(t))
	sinkWrites(t, b.sinkURL, "")
	reads(t, b.readURL, "")
	denials(t, b)
}

// readCommands runs the read-only commands of the binary with
// SCRIBEQ_READ_DATABASE_URL set to the read role and DATABASE_URL pointing
// nowhere: they can only succeed through the read URL.
func readCommands(t *testing.T, readURL string) {
	t.Helper()
	bin := buildScribeq(t)
	nowhere := "postgres://nobody:nothing@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	run := func(readURL string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, bin, args...)
		c.Dir = t.TempDir()
		c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.Dir, "DATABASE_URL=" + nowhere}
		if readURL != "" {
			c.Env = append(c.Env, "SCRIBEQ_READ_DATABASE_URL="+readURL)
		}
		out, err := c.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{
		{"status", "--json"},
		{"jobs", "--json"},
		{"search", "quiet"},
		{"show", "job-a"},
		{"export", "--job", "job-a", "--format", "txt"},
		{"watch", "--job", "job-a", "--timeout", "30s"},
		{"batches"},
	} {
		out, err := run(readURL, args...)
		require.NoError(t, err, "scribeq %s with the read URL:\n%s", strings.Join(args, " "), out)
	}
	// Without it, DATABASE_URL is used: the same command fails, so the
	// successes above came through the read URL.
	out, err := run("", "status")
	require.Error(t, err, "scribeq status without SCRIBEQ_READ_DATABASE_URL:\n%s", out)
	out, err = run(readURL, "show", "job-a")
	require.NoError(t, err)
	require.Contains(t, out, "hello quiet world")
}

func buildScribeq(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "scribeq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/scribeq")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/scribeq:\n%s", out)
	return bin
}
