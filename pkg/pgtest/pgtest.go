// Package pgtest gives each test a fresh, migrated Postgres database.
// Test-only: production code must never import it.
//
// One server serves a whole test binary. It comes from, in order:
//
//  1. TEST_DATABASE_URL (a role that may CREATE DATABASE); if it is set but
//     the server does not answer, tests fail rather than fall back;
//  2. a testcontainers-go Postgres container, when a Docker engine answers;
//  3. a throwaway local cluster (pkg/localpg) in a temporary directory, when
//     the PostgreSQL server binaries are installed.
//
// If none is available the tests fail, saying what to install: they never
// skip. The schema is migrated once per binary into a template database and
// every NewDB clones it, which takes milliseconds. Names carry a random
// suffix so that test binaries sharing one server never collide.
//
// Use it from a package's tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDB(t)
//		...
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for goose
	"github.com/moby/moby/client"
	"github.com/pressly/goose/v3"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/scribeq/scribeq/migrations"
	"github.com/scribeq/scribeq/pkg/localpg"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "TEST_DATABASE_URL"

// containerImage matches the Postgres major version of the local binaries.
const containerImage = "postgres:15-alpine"

// server is the Postgres instance shared by every test in this binary.
type server struct {
	source string // where it came from, for messages
	url    string // admin URL: a database other than the ones we create
	admin  *pgxpool.Pool
	stop   func(context.Context) error // nil when we did not start it

	tplOnce sync.Once
	tpl     string
	tplErr  error
}

var (
	mainCalled atomic.Bool

	srvOnce sync.Once
	srv     *server
	srvErr  error
)

// Main runs the tests, then drops the template database and stops whatever
// server this binary started, and exits with the tests' code. Call it from
// TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB creates a migrated database for t, drops it when t ends, and returns
// its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain, so the server is stopped after the tests")
	}
	s, err := get()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := s.template()
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("scribeq_test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tpl)); err != nil {
		t.Fatalf("pgtest: create database from template on %s: %v", s.source, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a test that forgot to close its pool must not leak the database.
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(s.url, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func get() (*server, error) {
	srvOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		srv, srvErr = acquire(ctx)
	})
	return srv, srvErr
}

func acquire(ctx context.Context) (*server, error) {
	if u := os.Getenv(EnvURL); u != "" {
		pool, err := connect(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %s is set but its server does not answer: %w", EnvURL, err)
		}
		return &server{source: EnvURL, url: u, admin: pool}, nil
	}
	var why []string
	s, err := fromDocker(ctx)
	if err == nil {
		return s, nil
	}
	why = append(why, "docker: "+err.Error())
	s, err = fromLocalCluster(ctx)
	if err == nil {
		return s, nil
	}
	why = append(why, "local cluster: "+err.Error())
	return nil, fmt.Errorf("pgtest: no Postgres for the tests. Set %s to a server where the role may CREATE DATABASE, "+
		"start a Docker engine, or install the PostgreSQL server binaries (apt-get install postgresql).\n\t%s",
		EnvURL, strings.Join(why, "\n\t"))
}

func fromDocker(ctx context.Context) (s *server, err error) {
	// testcontainers panics when it cannot work out a Docker host at all.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cli, err := testcontainers.NewDockerClientWithOpts(pctx)
	if err == nil {
		_, err = cli.Ping(pctx, client.PingOptions{})
		_ = cli.Close()
	}
	cancel()
	if err != nil {
		return nil, fmt.Errorf("no Docker engine answers: %w", err)
	}
	ctr, err := tcpostgres.Run(ctx, containerImage,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return nil, fmt.Errorf("start %s container: %w", containerImage, err)
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err == nil {
		var pool *pgxpool.Pool
		if pool, err = connect(ctx, u); err == nil {
			return &server{
				source: "container " + containerImage, url: u, admin: pool,
				stop: func(context.Context) error { return testcontainers.TerminateContainer(ctr) },
			}, nil
		}
	}
	_ = testcontainers.TerminateContainer(ctr)
	return nil, fmt.Errorf("connect to %s container: %w", containerImage, err)
}

func fromLocalCluster(ctx context.Context) (*server, error) {
	if _, err := localpg.BinDir(); err != nil {
		return nil, err
	}
	// os.MkdirTemp, not t.TempDir: the server outlives any one test, and when
	// running as root the postgres user must be able to reach the directory.
	dir, err := os.MkdirTemp("", "scribeq-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := localpg.Start(ctx, dir, logger)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stop := func(ctx context.Context) error {
		err := c.Stop(ctx)
		return errors.Join(err, os.RemoveAll(dir))
	}
	pool, err := connect(ctx, c.URL)
	if err != nil {
		return nil, errors.Join(err, stop(ctx))
	}
	return &server{source: "local cluster in " + dir, url: c.URL, admin: pool, stop: stop}, nil
}

// template migrates a template database once per binary.
func (s *server) template() (string, error) {
	s.tplOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		name := uniqueName("scribeq_tpl")
		if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
			s.tplErr = fmt.Errorf("pgtest: create template database on %s: %w", s.source, err)
			return
		}
		s.tpl = name // from here on shutdown drops it
		u, err := withDatabase(s.url, name)
		if err == nil {
			err = migrate(ctx, u)
		}
		if err != nil {
			s.tplErr = fmt.Errorf("pgtest: migrate template database: %w", err)
		}
	})
	return s.tpl, s.tplErr
}

func migrate(ctx context.Context, u string) error {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return err
	}
	// Closing every connection matters: CREATE DATABASE ... TEMPLATE refuses
	// a template that has sessions.
	defer func() { _ = db.Close() }()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

func shutdown() error {
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if srv.tpl != "" && srv.stop == nil {
		// Only a shared server outlives us; a cluster or container we started
		// goes away whole.
		if _, err := srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(srv.tpl)+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop template %s: %w", srv.tpl, err))
		}
	}
	srv.admin.Close()
	if srv.stop != nil {
		if err := srv.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", srv.source, err))
		}
	}
	return errors.Join(errs...)
}

func connect(ctx context.Context, u string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("cannot parse the database URL")
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// withDatabase points a URL (or a keyword/value connection string) at db.
func withDatabase(u, db string) (string, error) {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		pu, err := url.Parse(u)
		if err != nil {
			return "", errors.New("pgtest: cannot parse the database URL")
		}
		pu.Path = "/" + db
		pu.RawPath = ""
		return pu.String(), nil
	}
	// In keyword/value form the last setting of a keyword wins.
	return u + " dbname=" + db, nil
}

func uniqueName(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:12])
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
