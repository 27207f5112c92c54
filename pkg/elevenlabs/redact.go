package elevenlabs

import (
	"fmt"
	"log/slog"
)

// redacted stands for a secret that is set; an unset one prints as "".
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String shows the configuration with the API key masked, so printing or
// logging a Config cannot leak it.
func (c Config) String() string {
	return fmt.Sprintf("elevenlabs.Config{BaseURL:%q APIKey:%q UserAgent:%q}", c.BaseURL, redacted(c.APIKey), c.UserAgent)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue is what slog prints for a Config: the JSON handler would
// otherwise marshal every field, the key included.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("api_key", redacted(c.APIKey)))
}

// String names the API the client calls, never its key.
func (c *Client) String() string {
	if c == nil {
		return "elevenlabs.Client(nil)"
	}
	return "elevenlabs.Client{" + c.base + "}"
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// LogValue keeps slog from printing the client's fields, the key among them.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.String("base_url", c.base))
}

// String shows how many secrets the verifier holds, never the secrets.
func (v Verifier) String() string {
	return fmt.Sprintf("elevenlabs.Verifier{Secrets:%d Tolerance:%s FutureSkew:%s}", len(v.Secrets), v.Tolerance, v.FutureSkew)
}

// GoString is String, for %#v.
func (v Verifier) GoString() string { return v.String() }

// LogValue keeps slog from printing the secrets.
func (v Verifier) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("secrets", len(v.Secrets)), slog.Duration("tolerance", v.Tolerance))
}
