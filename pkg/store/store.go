// Package store is the only writer to Postgres: it applies EVENTS to the
// jobs, transcripts and job_events tables, records dead letters, and runs
// the schema migrations embedded in package migrations.
//
// Every write is idempotent and state only moves forward, so the sink may
// apply an event any number of times, in any order relative to the job's
// other events, and Postgres ends up the same (see Apply).
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalidEvent marks an event that can never be applied (bad data, not a
// database outage); retrying it cannot help.
var ErrInvalidEvent = errors.New("invalid event")

// Session settings for every pooled connection: a stuck transaction or query
// must not hold row locks for long.
const (
	statementTimeout       = "30s"
	idleInTransactionLimit = "60s"
)

// retryAttempts bounds how often one transaction is retried on transient
// errors before the error goes back to the caller (the sink then redelivers).
const retryAttempts = 5

// Store writes scribeq's state to Postgres.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// Open connects to url and pings it, so that a dead database fails here and
// not at the first write.
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can quote the URL, password included.
		return nil, errors.New("store: cannot parse the database URL")
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["statement_timeout"] = statementTimeout
	rp["idle_in_transaction_session_timeout"] = idleInTransactionLimit
	if rp["application_name"] == "" {
		rp["application_name"] = "scribeq"
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool for %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", where, err)
	}
	return &Store{pool: pool, log: logger}, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// Pool is the underlying pool, for read-only queries.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// HasTranscript reports whether a transcript for requestID is stored.
func (s *Store) HasTranscript(ctx context.Context, requestID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM transcripts WHERE request_id = $1)", requestID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: look up transcript %s: %w", requestID, err)
	}
	return ok, nil
}

// retry runs fn until it succeeds, fails for good, or attempts run out.
// Retrying whole transactions is safe because every write is idempotent.
func (s *Store) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt == retryAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("transient database error; retrying", "op", what, "attempt", attempt, "err", err)
		// Jitter keeps competing sinks from colliding again in lockstep.
		wait := backoff/2 + rand.N(backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retryable reports whether err is a serialization failure, a deadlock or a
// lost connection: outcomes where running the transaction again can succeed.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errConcurrentInsert) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", // serialization_failure, deadlock_detected
			"57P01", "57P02", "57P03": // admin/crash shutdown, cannot connect now
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
