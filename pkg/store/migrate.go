package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/scribeq/scribeq/migrations"
)

// Migrate runs a goose command against url: "up" applies every pending
// migration and then builds the search chunks of transcripts stored without
// them, "down" rolls back the newest one, "status" lists them all. What
// was done is written to w (nil discards it). Concurrent callers (several
// workers starting at once) are serialised by a Postgres advisory lock.
func Migrate(ctx context.Context, url string, cmd string, w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	if cmd != "up" && cmd != "down" && cmd != "status" {
		return fmt.Errorf("store: migrate: unknown command %q (want up, down or status)", cmd)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return errors.New("store: migrate: cannot parse the database URL")
	}
	defer func() { _ = db.Close() }()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: migrate: connect: %w", err)
	}
	// Poll the lock every second for up to 5 minutes (goose's default polls
	// every 5 s, which slows down every start behind a busy peer).
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	switch cmd {
	case "up":
		res, err := p.Up(ctx)
		for _, r := range res {
			_, _ = fmt.Fprintln(w, r)
		}
		if err != nil {
			return fmt.Errorf("store: migrate up: %w", err)
		}
		if len(res) == 0 {
			_, _ = fmt.Fprintln(w, "no pending migrations")
		}
		if err := buildMissingChunks(ctx, url, w); err != nil {
			return err
		}
	case "down":
		r, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("store: migrate down: no migration to roll back")
		}
		if err != nil {
			return fmt.Errorf("store: migrate down: %w", err)
		}
		_, _ = fmt.Fprintln(w, r)
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("store: migrate status: %w", err)
		}
		for _, m := range st {
			applied := "-"
			if m.State == goose.StateApplied {
				applied = m.AppliedAt.UTC().Format(time.DateTime)
			}
			_, _ = fmt.Fprintf(w, "%-8s %-19s %s\n", m.State, applied, m.Source.Path)
		}
	}
	return nil
}
