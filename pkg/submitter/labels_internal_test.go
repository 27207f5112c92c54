package submitter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/metrics"
)

func TestConvertErrorLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus string
		wantKind   string
	}{
		{"KeyRejected", &elevenlabs.APIError{Status: 401}, "401", metrics.KindKeyRejected},
		{"Forbidden", &elevenlabs.APIError{Status: 403}, "403", metrics.KindKeyRejected},
		{"OwnConcurrency", &elevenlabs.APIError{Status: 429, Code: "too_many_concurrent_requests"}, "429", metrics.KindConcurrencyLimit},
		{"SystemBusy", &elevenlabs.APIError{Status: 429, Code: "system_busy"}, "429", metrics.KindRateLimited},
		{"ServerError", &elevenlabs.APIError{Status: 502}, "502", metrics.KindServerError},
		{"RequestTimeout", &elevenlabs.APIError{Status: 408}, "408", metrics.KindTimeout},
		{"Conflict", &elevenlabs.APIError{Status: 409}, "409", metrics.KindConflict},
		{"Validation", fmt.Errorf("convert: %w", &elevenlabs.APIError{Status: 422}), "422", metrics.KindRejected},
		{"OddStatus", &elevenlabs.APIError{Status: 999}, metrics.StatusNone, metrics.KindServerError},
		{"InvalidRequest", fmt.Errorf("no model: %w", elevenlabs.ErrInvalidRequest), metrics.StatusNone, metrics.KindInvalidRequest},
		{"SizeMismatch", elevenlabs.ErrSizeMismatch, metrics.StatusNone, metrics.KindSizeMismatch},
		{"Canceled", context.Canceled, metrics.StatusNone, metrics.KindCanceled},
		{"Deadline", context.DeadlineExceeded, metrics.StatusNone, metrics.KindTimeout},
		{"Dial", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, metrics.StatusNone, metrics.KindNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, kind := convertErrorLabels(tt.err)
			require.Equal(t, tt.wantStatus, status)
			require.Equal(t, tt.wantKind, kind)
		})
	}
}
