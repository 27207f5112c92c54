package slots_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/slots"
)

func openQueue(t *testing.T) *queue.Queue { return natstest.Queue(t, queue.Config{}) }

func TestCost(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1, slots.Cost(0, 1), "unknown duration")
	require.Equal(t, 1, slots.Cost(480, 1))
	require.Equal(t, 2, slots.Cost(481, 1))
	require.Equal(t, 4, slots.Cost(7200, 1), "a two-hour file takes 4")
	require.Equal(t, 12, slots.Cost(7200, 3), "each channel counts")
}

// Several limiters (as several replicas would) never hold more than Max
// slots between them.
func TestSharedLimitIsNeverExceeded(t *testing.T) {
	t.Parallel()
	q := openQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const max = 3
	var ls []*slots.Limiter
	for range 3 {
		ls = append(ls, slots.New(q.Slots, slots.Config{Max: max, Poll: 20 * time.Millisecond}))
	}
	// The whole limit can be held at once, across replicas, and not more.
	for i := range max {
		require.NoError(t, ls[i%len(ls)].Acquire(ctx, "hold-"+string(rune('0'+i)), 1, time.Minute))
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	require.Error(t, ls[0].Acquire(short, "one-too-many", 1, time.Minute), "the limit is full")
	cancelShort()
	for i := range max {
		require.NoError(t, ls[i%len(ls)].Release(ctx, "hold-"+string(rune('0'+i))))
	}

	var inUse, peak atomic.Int32
	var wg sync.WaitGroup
	for r, l := range ls {
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := string(rune('a'+r)) + string(rune('0'+i))
				require.NoError(t, l.Acquire(ctx, id, 1, time.Minute))
				n := inUse.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond) // hold the slot for a moment of work
				inUse.Add(-1)
				require.NoError(t, l.Release(ctx, id))
			}()
		}
	}
	wg.Wait()
	require.LessOrEqual(t, peak.Load(), int32(max))
	used, _, err := slots.New(q.Slots, slots.Config{Max: max}).Usage(ctx)
	require.NoError(t, err)
	require.Zero(t, used)
}

func TestHoldingsExpire(t *testing.T) {
	t.Parallel()
	q := openQueue(t)
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := slots.New(q.Slots, slots.Config{Max: 1, Hold: time.Minute, Now: clock, Poll: 10 * time.Millisecond})
	require.NoError(t, l.Acquire(ctx, "lost-webhook", 1, 0))
	done := make(chan error, 1)
	go func() { done <- l.Acquire(ctx, "next", 1, 0) }()
	select {
	case err := <-done:
		t.Fatalf("acquired a slot that is taken: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	require.NoError(t, <-done)
}

func TestAIMD(t *testing.T) {
	t.Parallel()
	q := openQueue(t)
	ctx := context.Background()
	l := slots.New(q.Slots, slots.Config{Max: 8})
	require.NoError(t, l.TooMany(ctx, 0))
	_, limit, err := l.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, limit)
	require.NoError(t, l.TooMany(ctx, 3))
	_, limit, _ = l.Usage(ctx)
	require.Equal(t, 2, limit, "halved, and capped by the provider's maximum")
	for range 10 {
		require.NoError(t, l.Accepted(ctx))
	}
	_, limit, _ = l.Usage(ctx)
	require.Equal(t, 8, limit, "grows back to Max, no further")
}

func TestReleaseOnWebhooks(t *testing.T) {
	t.Parallel()
	q := openQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := slots.New(q.Slots, slots.Config{Max: 1, Poll: 10 * time.Millisecond})
	go func() { _ = l.ReleaseOnWebhooks(ctx, q.Webhooks) }()
	require.NoError(t, l.Acquire(ctx, "j1", 1, time.Hour))
	acquired := make(chan error, 1)
	go func() { acquired <- l.Acquire(ctx, "j2", 1, time.Hour) }()
	// Until the watcher runs, a put could be missed; keep marking until j2 gets in.
	for {
		_, err := q.Webhooks.Put(ctx, "j1", []byte("req-1"))
		require.NoError(t, err)
		select {
		case err := <-acquired:
			require.NoError(t, err)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
