package ingress

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// clientResolver names the client of a request for the rate limiter and the
// logs. Behind a reverse proxy every request comes from the proxy, so the
// proxy's headers must say who the client is; but anyone can send those
// headers, so they are believed only from a trusted proxy.
type clientResolver struct {
	proxies []netip.Prefix
}

// addr is the TCP peer or, when the peer is a trusted proxy, the client the
// proxies recorded:
//
//   - X-Forwarded-For: the nearest hop, reading from the right, that is not
//     a trusted proxy. Entries further left were written by the client (or
//     by proxies we do not know) and can be forged. An entry that is not an
//     address stops the walk at the last trusted hop.
//   - otherwise X-Real-IP, which a proxy sets to the peer it saw.
//
// An unparsable peer gives the zero Addr: such requests share one bucket.
func (c clientResolver) addr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !c.trusted(addr) {
		return addr
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, ok := parseHop(hops[i])
			if !ok {
				return addr
			}
			if !c.trusted(hop) {
				return hop
			}
			addr = hop
		}
		return addr
	}
	if hop, ok := parseHop(r.Header.Get("X-Real-IP")); ok {
		return hop
	}
	return addr
}

// logAttrs says who sent r: client, and peer when a trusted proxy relayed it.
func (c clientResolver) logAttrs(r *http.Request) []any {
	client := c.addr(r)
	name := "unknown"
	if client.IsValid() {
		name = client.String()
	}
	attrs := []any{"client", name}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err != nil || ap.Addr().Unmap() != client {
		attrs = append(attrs, "peer", r.RemoteAddr)
	}
	return attrs
}

func (c clientResolver) trusted(a netip.Addr) bool {
	for _, p := range c.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one address as proxies write it: bare, or with a port
// ("192.0.2.1:443", "[2001:db8::1]:443").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
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
