package query_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/query"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"7d":                   now.AddDate(0, 0, -7),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.Local),
		"2026-11-01T08:30:00Z": time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
	} {
		got, err := query.ParseWhen(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %v, want %v", in, got, want)
	}
	for _, bad := range []string{"yesterday", "-3h", "7x", "2026-13-01"} {
		_, err := query.ParseWhen(bad, now)
		require.Error(t, err, bad)
	}
}

func TestFileBaseIsSafeAndDistinct(t *testing.T) {
	require.Equal(t, "call 1.0ce934b1", (&query.TranscriptRow{Name: "call 1.mp3", JobID: "0ce934b1-2124"}).FileBase())
	require.Equal(t, "a_b.12345678", (&query.TranscriptRow{Name: `a:b.wav`, JobID: "12345678-aaaa"}).FileBase())
	require.Equal(t, "transcript.12345678", (&query.TranscriptRow{Name: "..", JobID: "12345678-aaaa"}).FileBase())
}
