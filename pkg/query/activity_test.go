package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/query"
)

func TestThroughput(t *testing.T) {
	t.Parallel()
	db, _ := seed(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC) // seed's clock: j1 completed, j2 failed just after
	iv, err := db.Throughput(ctx, at.Add(-90*time.Second), at.Add(3*time.Minute), time.Minute)
	require.NoError(t, err)
	want := make([]query.Interval, 5)
	for i := range want {
		want[i].Start = at.Add(time.Duration(i-2) * time.Minute)
	}
	want[2] = query.Interval{Start: at, Completed: 1, Failed: 1, AudioSecs: 1.5}
	require.Len(t, iv, len(want))
	for i := range want {
		require.True(t, want[i].Start.Equal(iv[i].Start), "interval %d starts %s, want %s", i, iv[i].Start, want[i].Start)
		iv[i].Start = want[i].Start
	}
	require.Equal(t, want, iv)

	iv, err = db.Throughput(ctx, at.Add(time.Hour), at.Add(2*time.Hour), time.Hour)
	require.NoError(t, err)
	require.Equal(t, []query.Interval{{Start: at.Add(time.Hour)}}, iv, "an empty range has its zero interval")

	_, err = db.Throughput(ctx, at, at, time.Minute)
	require.Error(t, err)
	_, err = db.Throughput(ctx, at, at.Add(time.Hour), 0)
	require.Error(t, err)

	n, err := db.DeadLetterCount(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
