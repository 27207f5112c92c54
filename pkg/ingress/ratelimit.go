package ingress

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per client, checked before a request's body is
// read or its signature verified.
type limiter struct {
	rate    rate.Limit
	burst   int
	proxies []netip.Prefix
	// idle is how long a client may stay away before its bucket is
	// forgotten: by then it has refilled, so forgetting changes nothing.
	idle time.Duration

	mu        sync.Mutex
	clients   map[netip.Prefix]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int, proxies []netip.Prefix) *limiter {
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &limiter{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		proxies: proxies,
		idle:    max(refill, time.Minute),
		clients: map[netip.Prefix]*client{},
	}
}

// allow checks, before anything else is done with r, that its client has a
// token left; when none, it returns false and the whole seconds until there
// will be one, for Retry-After. It takes nothing: charge does, and is called
// only for requests that did not prove themselves genuine (a valid
// signature), so a burst of real deliveries — a whole batch finishing at
// once — is never refused, while unsigned floods are.
func (l *limiter) allow(r *http.Request, now time.Time) (retryAfter int, charge func(), ok bool) {
	key := clientKey(l.clientAddr(r))
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > l.idle {
				delete(l.clients, k)
			}
		}
		l.lastSweep = now
	}
	c := l.clients[key]
	if c == nil {
		c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[key] = c
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

// clientAddr is the TCP peer, or, when the peer is a trusted proxy, the
// nearest address in X-Forwarded-For that is not one: entries further left
// were written by the client and can be forged.
func (l *limiter) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{} // every unparsable peer shares one bucket
	}
	addr := ap.Addr().Unmap()
	if !l.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		hop = hop.Unmap()
		if !l.trusted(hop) {
			return hop
		}
		addr = hop
	}
	return addr
}

func (l *limiter) trusted(a netip.Addr) bool {
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
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

// parsePrefixes reads CIDRs or bare addresses.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
