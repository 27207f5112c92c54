package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"

	"github.com/scribeq/scribeq/migrations"
)

// versionTable is goose's default, which store.Migrate uses.
const versionTable = "goose_db_version"

const fixMigrate = "run 'scribeq migrate up' with a role that may change the schema\n" +
	"(docker compose: the 'migrate' service; Kubernetes: the migration Job)"

func checkPostgres(ctx context.Context, cfg Config) []Result {
	rs := &results{group: GroupPostgres}
	if cfg.DatabaseURL == "" {
		rs.fail("connection", "no database URL", "set DATABASE_URL (or --database-url), or start 'scribeq dev' in this folder")
		return rs.list
	}
	pcfg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		// pgx's parse errors can quote the URL, password included.
		rs.fail("connection", "cannot parse the database URL", "DATABASE_URL must look like postgres://user:password@host:5432/db?sslmode=...")
		return rs.list
	}
	where := fmt.Sprintf("%s@%s:%d/%s", pcfg.User, pcfg.Host, pcfg.Port, pcfg.Database)
	conn, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		rs.fail("connection", where+": "+pgError(err), "start Postgres or fix DATABASE_URL (host, port, user, password, sslmode)")
		return rs.list
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var version string
	var readOnly bool
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('transaction_read_only') = 'on'`).Scan(&version, &readOnly); err != nil {
		rs.fail("connection", where+": "+pgError(err), "check that the server answers queries: psql \"$DATABASE_URL\" -c 'select 1'")
		return rs.list
	}
	detail := fmt.Sprintf("%s (PostgreSQL %s)", where, version)
	if readOnly {
		detail += ", read-only"
	}
	rs.ok("connection", detail)

	if !checkMigrations(ctx, rs, conn) {
		rs.skip("dead letters", "the schema is not complete")
		return rs.list
	}
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL`).Scan(&n)
	switch {
	case err != nil:
		rs.warn("dead letters", "cannot count them: "+pgError(err),
			"the doctor's role needs SELECT on dead_letters (the read-only role has it)")
	case n > 0:
		rs.warn("dead letters", fmt.Sprintf("%d message(s) could not be processed", n),
			"see why: scribeq dead-letters list; fix the cause, then: scribeq dead-letters replay ID...")
	default:
		rs.ok("dead letters", "none waiting")
	}
	return rs.list
}

// checkMigrations compares the versions goose recorded with the migrations
// embedded in this binary, reading goose's table directly: goose's own
// status calls create the table when it is missing, and the doctor must
// not write. It reports whether the schema is at least this binary's.
func checkMigrations(ctx context.Context, rs *results, conn *pgx.Conn) bool {
	embedded, err := embeddedVersions()
	if err != nil {
		rs.fail("migrations", err.Error(), "")
		return false
	}
	latest := embedded[len(embedded)-1]
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		rs.fail("migrations", "look for "+versionTable+": "+pgError(err), "")
		return false
	}
	if !exists {
		rs.fail("migrations", fmt.Sprintf("no schema: %d migration(s) pending", len(embedded)), fixMigrate)
		return false
	}
	// A version's newest row says whether it is applied (goose records a
	// rollback as a new row with is_applied false).
	rows, err := conn.Query(ctx, `SELECT DISTINCT ON (version_id) version_id, is_applied
		FROM `+versionTable+` ORDER BY version_id, id DESC`)
	if err != nil {
		rs.fail("migrations", "read "+versionTable+": "+pgError(err), "the doctor's role needs SELECT on "+versionTable)
		return false
	}
	applied := map[int64]bool{}
	var dbMax int64
	for rows.Next() {
		var v int64
		var ok bool
		if err := rows.Scan(&v, &ok); err != nil {
			rows.Close()
			rs.fail("migrations", "read "+versionTable+": "+pgError(err), "")
			return false
		}
		if ok && v > 0 {
			applied[v] = true
			dbMax = max(dbMax, v)
		}
	}
	if err := rows.Err(); err != nil {
		rs.fail("migrations", "read "+versionTable+": "+pgError(err), "")
		return false
	}
	var pending []string
	for _, v := range embedded {
		if !applied[v] {
			pending = append(pending, fmt.Sprint(v))
		}
	}
	switch {
	case len(pending) > 0:
		rs.fail("migrations", fmt.Sprintf("at version %d, this binary has %d: %d pending (%s)",
			dbMax, latest, len(pending), strings.Join(pending, ", ")), fixMigrate)
		return false
	case dbMax > latest:
		rs.warn("migrations", fmt.Sprintf("at version %d, newer than this binary's %d", dbMax, latest),
			"a newer scribeq migrated this database: upgrade this binary (older workers may misread new columns)")
	default:
		rs.ok("migrations", fmt.Sprintf("current (version %d)", latest))
	}
	return true
}

// embeddedVersions lists the versions of migrations.FS, ascending.
func embeddedVersions() ([]int64, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		return nil, errors.New("this binary embeds no migrations")
	}
	var vs []int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return nil, fmt.Errorf("embedded migration %s: %w", n, err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs, nil
}

// pgError is err's text for a report: a server error's message and code,
// anything else as is (pgx never puts the password in its errors).
func pgError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err.Error()
}
