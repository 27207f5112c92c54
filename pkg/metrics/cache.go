package metrics

import (
	"sync"
	"time"
)

// scrapeTimeout bounds one reading of shared state during a scrape, well
// under Prometheus's default 10 s scrape timeout.
const scrapeTimeout = 3 * time.Second

// cache keeps a scrape-time reading for ttl. Concurrent scrapes wait for
// one reading instead of each asking NATS.
type cache[T any] struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	at  time.Time
	val T
	set bool
}

func (c *cache[T]) get(read func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.set && now.Sub(c.at) < c.ttl {
		return c.val
	}
	c.val, c.at, c.set = read(), now, true
	return c.val
}

// invalidate makes the next get read again.
func (c *cache[T]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set = false
}
