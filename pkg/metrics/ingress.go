package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook delivery outcomes (scribeq_webhook_deliveries_total).
const (
	WebhookOK               = "ok"                // published to NATS, answered 200
	WebhookSpooled          = "spooled"           // NATS unreachable: fsynced to the spool, answered 200
	WebhookIgnored          = "ignored"           // genuine, but not a speech-to-text result
	WebhookBadSignature     = "bad_signature"     // hash does not match any secret, or unreadable header
	WebhookMissingSignature = "missing_signature" // no ElevenLabs-Signature header
	WebhookStale            = "stale"             // signed longer ago than the tolerance
	WebhookFuture           = "future"            // signed too far in the future
	WebhookTooLarge         = "too_large"         // body over --max-body-bytes
	WebhookUnreadable       = "unreadable"        // the body could not be read (client went away)
	WebhookMalformed        = "malformed"         // genuine, but not a webhook we can parse
	WebhookUnavailable      = "unavailable"       // neither NATS nor the spool took it: answered 503
	WebhookRateLimited      = "rate_limited"      // refused by the per-client rate limit before reading
)

var webhookOutcomes = []string{
	WebhookOK, WebhookSpooled, WebhookIgnored, WebhookBadSignature, WebhookMissingSignature, WebhookStale,
	WebhookFuture, WebhookTooLarge, WebhookUnreadable, WebhookMalformed, WebhookUnavailable, WebhookRateLimited,
}

// Ingress is the webhook ingress's part.
type Ingress struct {
	deliveries    *prometheus.CounterVec
	storeDuration prometheus.Histogram
	replayed      prometheus.Counter
	toCompleted   prometheus.Counter

	spool atomic.Pointer[SpoolStats]
}

// SpoolStats reads the ingress spool: webhooks waiting for NATS, and the
// bytes they take.
type SpoolStats struct {
	Pending func() int
	Bytes   func() int64
}

// Ingress returns the ingress's metrics, registering them on first use.
func (r *Registry) Ingress() *Ingress {
	if r == nil {
		return nil
	}
	return part(r, &r.ingress, func() *Ingress {
		m := &Ingress{
			deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "webhook", Name: "deliveries_total",
				Help: "Webhook requests by outcome (ok and spooled were answered 200).",
			}, []string{"outcome"}),
			storeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: Namespace, Subsystem: "webhook", Name: "store_duration_seconds",
				Help: "Time from a verified webhook to its event being stored (JetStream ack, or the spool's fsync).",
				// Up to the default --publish-timeout (15 s) and beyond.
				Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30},
			}),
			replayed: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "webhook", Name: "spool_replayed_total",
				Help: "Spooled webhooks published to NATS once it was reachable again.",
			}),
			toCompleted: r.transition(StateSubmitted, StateCompleted),
		}
		for _, o := range webhookOutcomes {
			m.deliveries.WithLabelValues(o)
		}
		spoolPending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "webhook", Name: "spool_pending",
			Help: "Webhooks in the spool waiting for NATS.",
		}, func() float64 {
			if s := m.spool.Load(); s != nil {
				return float64(s.Pending())
			}
			return 0
		})
		spoolBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "webhook", Name: "spool_bytes",
			Help: "Disk used by the spool.",
		}, func() float64 {
			if s := m.spool.Load(); s != nil {
				return float64(s.Bytes())
			}
			return 0
		})
		r.reg.MustRegister(m.deliveries, m.storeDuration, m.replayed, spoolPending, spoolBytes)
		return m
	})
}

// Delivery counts one webhook request by outcome (a Webhook* constant).
func (m *Ingress) Delivery(outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(outcome).Inc()
}

// Stored records a webhook stored after took: published (the job's
// transition to completed) or, with spooled, kept in the spool (its
// transition is counted when Replayed publishes it).
func (m *Ingress) Stored(took time.Duration, spooled bool) {
	if m == nil {
		return
	}
	m.storeDuration.Observe(took.Seconds())
	if spooled {
		m.deliveries.WithLabelValues(WebhookSpooled).Inc()
		return
	}
	m.deliveries.WithLabelValues(WebhookOK).Inc()
	m.toCompleted.Inc()
}

// Replayed records a spooled webhook published to NATS.
func (m *Ingress) Replayed() {
	if m == nil {
		return
	}
	m.replayed.Inc()
	m.toCompleted.Inc()
}

// WatchSpool makes scrapes report the spool through s; the latest call wins.
func (m *Ingress) WatchSpool(s *SpoolStats) {
	if m == nil {
		return
	}
	m.spool.Store(s)
}
