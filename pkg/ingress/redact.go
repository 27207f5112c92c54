package ingress

import (
	"fmt"
	"log/slog"
)

// String shows the configuration without the webhook secrets (only how
// many there are), so that printing or logging a Config cannot leak them.
func (c Config) String() string {
	return fmt.Sprintf("ingress.Config{Path:%q Secrets:%d MaxBodyBytes:%d Tolerance:%s SpoolDir:%q RateLimit:%v TrustedProxies:%v}",
		c.Path, len(c.Secrets), c.MaxBodyBytes, c.Tolerance, c.SpoolDir, c.RateLimit, c.TrustedProxies)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue is what slog prints for a Config: the JSON handler would
// otherwise marshal every field, secrets included.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("path", c.Path),
		slog.Int("secrets", len(c.Secrets)),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Duration("tolerance", c.Tolerance),
		slog.String("spool_dir", c.SpoolDir),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Any("trusted_proxies", c.TrustedProxies),
	)
}
