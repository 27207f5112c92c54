package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDBIsMigratedAndDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var first, second string
	t.Run("Use", func(t *testing.T) {
		first, second = NewDB(t), NewDB(t)
		require.NotEqual(t, first, second)
		for _, u := range []string{first, second} {
			conn, err := pgx.Connect(ctx, u)
			require.NoError(t, err)
			var tables int
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
				WHERE table_schema = 'public' AND table_name IN ('jobs', 'transcripts', 'job_events', 'dead_letters')`).Scan(&tables))
			require.Equal(t, 4, tables)
			// Left open on purpose: the drop must not depend on tests closing.
		}
		conn, err := pgx.Connect(ctx, first)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "INSERT INTO jobs (job_id, state, state_rank) VALUES ('j', 'queued', 0)")
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))
		var n int
		conn, err = pgx.Connect(ctx, second)
		require.NoError(t, err)
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM jobs").Scan(&n))
		require.Zero(t, n, "databases must be independent")
		require.NoError(t, conn.Close(ctx))
	})
	for _, u := range []string{first, second} {
		_, err := pgx.Connect(ctx, u)
		require.ErrorContains(t, err, "does not exist", "database should be dropped when its test ends")
	}
}

// Tests run in parallel create databases from the same template at once.
func TestNewDBConcurrent(t *testing.T) {
	t.Parallel()
	for i := range 6 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			u := NewDB(t)
			conn, err := pgx.Connect(context.Background(), u)
			require.NoError(t, err, "db %d", i)
			require.NoError(t, conn.Close(context.Background()))
		})
	}
}

func TestUnreachableEnvURLFails(t *testing.T) {
	// Not parallel: t.Setenv. Port 1 on loopback refuses connections.
	t.Setenv(EnvURL, "postgres://u:secret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := acquire(ctx)
	require.Nil(t, s)
	require.ErrorContains(t, err, EnvURL+" is set but its server does not answer")
	require.NotContains(t, err.Error(), "secret-pw")
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	got, err := withDatabase("postgres://u:p@h:5432/orig?sslmode=disable", "x_1")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@h:5432/x_1?sslmode=disable", got)
	got, err = withDatabase("host=h user=u dbname=orig", "x_1")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(got)
	require.NoError(t, err)
	require.Equal(t, "x_1", cfg.Database)
}
