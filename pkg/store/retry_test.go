package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

func TestRetryable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "22P02"}, false},
		{fmt.Errorf("store: apply x: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("store: apply x: %w", errConcurrentInsert), true},
		{context.Canceled, false},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), false},
		{fmt.Errorf("%w: bad", ErrInvalidEvent), false},
		{errors.New("anything else"), false},
	} {
		require.Equal(t, tt.want, retryable(tt.err), "%v", tt.err)
	}
}
