package reconciler_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/reconciler"
)

func TestThresholds(t *testing.T) {
	t.Parallel()
	def := reconciler.Config{}
	fast := reconciler.Config{MinAge: time.Minute, Factor: 1, LostAfter: 10 * time.Minute, LostFactor: 2, UnknownDuration: time.Hour}
	for _, tc := range []struct {
		name        string
		cfg         reconciler.Config
		secs        float64
		stuck, lost time.Duration
	}{
		{"unknown duration: MinAge, and lost only once the longest file could be done", def, 0,
			15 * time.Minute, 4 * (2*time.Second + 10800*time.Second)},
		{"short audio: the minimums", def, 30, 15 * time.Minute, 2 * time.Hour},
		{"an hour of audio: k × (0.3·D + 2 s)", def, 3600, 3 * 1082 * time.Second, 2 * time.Hour},
		{"ten hours of audio", def, 36000, 3 * 10802 * time.Second, 4 * 10802 * time.Second},
		{"configured", fast, 600, 182 * time.Second, 10 * time.Minute},
		{"configured, unknown duration", fast, 0, time.Minute, 2 * 1082 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.stuck, tc.cfg.StuckAfter(tc.secs))
			require.Equal(t, tc.lost, tc.cfg.LostAfterFor(tc.secs))
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  reconciler.Config
		want string
	}{
		{reconciler.Config{Interval: -time.Second}, "Config.Interval"},
		{reconciler.Config{Concurrency: -1}, "Config.Concurrency"},
		{reconciler.Config{Factor: -2}, "Config.Factor"},
		{reconciler.Config{MinAge: 3 * time.Hour}, "Config.LostAfter"},
	} {
		_, err := reconciler.New(nil, nil, nil, tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := reconciler.New(nil, nil, nil, reconciler.Config{})
	require.ErrorContains(t, err, "required")
}
