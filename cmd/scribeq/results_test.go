package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/query"
)

func TestFilterTellsBatchIDFromName(t *testing.T) {
	f, err := FilterFlags{Batch: "184d6411-3fdd-4ea6-9b90-a68ef37dd78d"}.filter(time.Now())
	require.NoError(t, err)
	require.Equal(t, "184d6411-3fdd-4ea6-9b90-a68ef37dd78d", f.BatchID)
	require.Empty(t, f.BatchName)
	f, err = FilterFlags{Batch: "Q3 calls"}.filter(time.Now())
	require.NoError(t, err)
	require.Equal(t, "Q3 calls", f.BatchName)
	require.Empty(t, f.BatchID)
}

func TestProgressLine(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	p := &query.Progress{
		Counts: map[string]int64{"queued": 50, "submitted": 10, "completed": 38, "failed": 2},
		Total:  100, Done: 40, AudioSecs: 1000, AudioSecsDone: 400, FirstQueued: &t0,
	}
	// 400 of 1000 audio seconds in 60 s: 90 s to go.
	require.Equal(t, "40/100 done (40%)  queued 50  submitted 10  completed 38  failed 2  40.0 jobs/min  ETA 1m30s",
		progressLine(p, t0.Add(time.Minute)))
	end := t0.Add(2 * time.Minute)
	p = &query.Progress{Counts: map[string]int64{"completed": 10}, Total: 10, Done: 10, FirstQueued: &t0, LastFinished: &end}
	require.Equal(t, "10/10 done (100%)  completed 10  5.0 jobs/min  took 2m0s", progressLine(p, t0.Add(time.Hour)))
}
