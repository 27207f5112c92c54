package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// probeBody is what the probe POSTs: an unsigned, harmless envelope.
const probeBody = `{"type":"scribeq_doctor_probe","event_timestamp":0,"data":{}}`

// certWarning: a certificate expiring sooner than this is worth a warning.
const certWarning = 14 * 24 * time.Hour

// checkWebhookURL proves that the public webhook URL reaches scribeq's
// ingress. A GET proves little (a proxy's default page answers too), and a
// signed POST would need the secret, so the probe POSTs an unsigned body:
// only our ingress answers exactly 401 {"error":"invalid signature"}, and
// it does so before parsing anything, so nothing is stored. Run it from
// outside the network to prove what ElevenLabs sees.
func checkWebhookURL(ctx context.Context, cfg Config) []Result {
	rs := &results{group: GroupWebhook}
	if cfg.WebhookURL == "" {
		rs.skip("reachable", "no --webhook-url given")
		return rs.list
	}
	u, err := url.Parse(cfg.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		rs.fail("reachable", fmt.Sprintf("%q is not an http(s) URL", cfg.WebhookURL),
			"give the full public URL, e.g. https://hooks.example.com/webhooks/elevenlabs")
		return rs.list
	}
	hc := *cfg.HTTPClient
	// ElevenLabs does not follow a redirect with the POST body, so a
	// redirect is a broken URL, not a detour.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(probeBody))
	if err != nil {
		rs.fail("reachable", err.Error(), "")
		return rs.list
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "scribeq-doctor")
	resp, err := hc.Do(req)
	if err != nil {
		rs.fail("reachable", "POST "+u.Redacted()+": "+err.Error(), transportFix(err, u))
		return rs.list
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	var answer struct {
		Error string `json:"error"`
	}
	ours := json.Unmarshal(body, &answer) == nil && answer.Error == "invalid signature"
	seen := fmt.Sprintf("POST %s answered %s", u.Redacted(), resp.Status)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && ours:
		rs.ok("reachable", seen+" (scribeq's ingress refusing an unsigned probe)")
	case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(body), "rate limited"):
		rs.warn("reachable", seen+" (scribeq's ingress, rate limiting this address)",
			"the ingress answers; try again in a few seconds, or from another address")
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		rs.fail("reachable", seen+" → "+resp.Header.Get("Location"),
			"ElevenLabs does not follow redirects: configure the final URL (often http → https or a missing trailing path)")
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		rs.fail("reachable", seen+": nothing takes webhooks at this path",
			"the URL's path must be the ingress's SCRIBEQ_WEBHOOK_PATH (default /webhooks/elevenlabs), and the proxy must route it to the ingress")
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		rs.fail("reachable", seen+": a proxy answered, the ingress behind it did not",
			"start the ingress ('scribeq ingress') and check the proxy's upstream address and the ingress's /readyz")
	case resp.StatusCode/100 == 2:
		rs.fail("reachable", seen+" to an unsigned request: this is not scribeq's ingress",
			"point the URL at the ingress; whatever answers now accepts forged webhooks or drops real ones")
	default:
		rs.fail("reachable", seen+": not scribeq's ingress ("+snippet(body)+")",
			"something in front of the ingress refuses requests (an auth proxy or WAF?); ElevenLabs' deliveries must reach the ingress untouched")
	}
	checkCert(rs, resp.TLS, cfg.Now())
	if u.Scheme == "http" && !isLocal(u.Hostname()) {
		rs.warn("https", "plain http: webhook bodies (transcripts) cross the internet unencrypted",
			"serve TLS (scribeq ingress --tls-cert/--tls-key, or --tls-domain for automatic certificates) or put a TLS proxy in front")
	}
	return rs.list
}

func checkCert(rs *results, st *tls.ConnectionState, now time.Time) {
	if st == nil || len(st.PeerCertificates) == 0 {
		return
	}
	cert := st.PeerCertificates[0]
	left := cert.NotAfter.Sub(now)
	detail := fmt.Sprintf("certificate for %s expires %s (in %s)", strings.Join(cert.DNSNames, ", "),
		cert.NotAfter.UTC().Format(time.DateOnly), left.Round(time.Hour))
	if left < certWarning {
		rs.warn("certificate", detail, "renew the certificate: ElevenLabs refuses to deliver to an expired one")
		return
	}
	rs.ok("certificate", detail)
}

func transportFix(err error, u *url.URL) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &dnsErr):
		return "the name " + u.Hostname() + " does not resolve: create its DNS record"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "the TLS certificate is not valid for ElevenLabs: use one from a public CA that covers " + u.Hostname()
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout"):
		return "no answer in time: open the port in the firewall / security group and check the load balancer"
	}
	return "make the ingress reachable at this URL: check that it runs, the port is published and firewalls allow it"
}

func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate())
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	if s == "" {
		return "empty body"
	}
	return s
}
