package ingress

import (
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per client, checked before a request's body is
// read or its signature verified.
type limiter struct {
	rate    rate.Limit
	burst   int
	clients clientResolver
	// idle is how long a client may stay away before its bucket is
	// forgotten: by then it has refilled, so forgetting changes nothing.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[netip.Prefix]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int, clients clientResolver) *limiter {
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &limiter{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		clients: clients,
		idle:    max(refill, time.Minute),
		buckets: map[netip.Prefix]*client{},
	}
}

// allow checks, before anything else is done with r, that its client has a
// token left; when none, it returns false and the whole seconds until there
// will be one, for Retry-After. It takes nothing: charge does, and is called
// only for requests that did not prove themselves genuine (a valid
// signature), so a burst of real deliveries — a whole batch finishing at
// once — is never refused, while unsigned floods are.
func (l *limiter) allow(r *http.Request, now time.Time) (retryAfter int, charge func(), ok bool) {
	key := clientKey(l.clients.addr(r))
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, c := range l.buckets {
			if now.Sub(c.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	c := l.buckets[key]
	if c == nil {
		c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = c
	}
	c.seen = now
	if tokens := c.lim.TokensAt(now); tokens < 1 {
		wait := time.Duration((1 - tokens) / float64(l.rate) * float64(time.Second))
		return max(1, int(math.Ceil(wait.Seconds()))), nil, false
	}
	return 0, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		c.lim.AllowN(time.Now(), 1)
	}, true
}

type genuineKey struct{}

// markGenuine records that r carried a valid signature, so it is not
// charged to its client's rate limit.
func markGenuine(r *http.Request) {
	if g, ok := r.Context().Value(genuineKey{}).(*bool); ok {
		*g = true
	}
}

// clientKey groups IPv6 clients by /64, the block one host usually holds,
// so rotating addresses within it does not buy new buckets.
func clientKey(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}
