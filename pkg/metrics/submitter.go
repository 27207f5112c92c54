package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scribeq/scribeq/pkg/event"
)

// Convert call outcomes (scribeq_submitter_convert_duration_seconds).
const (
	ConvertAccepted = "accepted"
	ConvertError    = "error"
)

// Kinds of convert errors (scribeq_submitter_convert_errors_total). The
// status label holds the HTTP status, or "none" when no answer came.
const (
	KindKeyRejected      = "key_rejected"      // 401/403: the API key
	KindConcurrencyLimit = "concurrency_limit" // 429 for our own in-flight jobs
	KindRateLimited      = "rate_limited"      // 429 for load
	KindServerError      = "server_error"      // 5xx
	KindTimeout          = "timeout"           // 408, or no answer in time
	KindConflict         = "conflict"          // 409
	KindRejected         = "rejected"          // any other 4xx: the job is refused
	KindInvalidRequest   = "invalid_request"   // refused before sending
	KindSizeMismatch     = "size_mismatch"     // the audio object changed under us
	KindCanceled         = "canceled"          // shutdown cut the call off
	KindNetwork          = "network"           // no answer: connection errors
	StatusNone           = "none"
)

// Submitter retry kinds (scribeq_submitter_retries_total).
const (
	// RetryError: a transient failure that counts against the job's attempts.
	RetryError = "error"
	// RetryWait: pacing that does not (a busy slot, a held lease, a paused key).
	RetryWait = "wait"
)

// Submitter is the submitter's part.
type Submitter struct {
	convertDuration *prometheus.HistogramVec
	convertErrors   *prometheus.CounterVec
	inFlight        prometheus.Gauge
	concurrency     prometheus.Gauge
	retries         *prometheus.CounterVec
	audio           prometheus.Counter
	cost            *prometheus.CounterVec
	toSubmitted     prometheus.Counter
	toFailed        prometheus.Counter
	deadLetters     prometheus.Counter

	slots atomic.Pointer[SlotUsage]
}

// SlotUsage reads the shared concurrency slots: in use and the current
// (adaptive) limit. slots.Limiter.Usage is one.
type SlotUsage func(ctx context.Context) (used, limit int, err error)

// Submitter returns the submitter's metrics, registering them on first use.
func (r *Registry) Submitter() *Submitter {
	if r == nil {
		return nil
	}
	return part(r, &r.submitter, func() *Submitter {
		m := &Submitter{
			convertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "convert_duration_seconds",
				Help: "Time of one convert call to ElevenLabs, audio upload included, by outcome.",
				// Uploads of long recordings take minutes.
				Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
			}, []string{"outcome"}),
			convertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "convert_errors_total",
				Help: "Convert calls that failed, by HTTP status (none: no answer) and kind.",
			}, []string{"status", "kind"}),
			inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "convert_in_flight",
				Help: "Convert calls this process has in flight.",
			}),
			concurrency: prometheus.NewGauge(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "convert_concurrency",
				Help: "Convert calls this process may have in flight at once (--concurrency).",
			}),
			retries: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "retries_total",
				Help: "Job deliveries given back for later: error (counts against --max-attempts) or wait (pacing).",
			}, []string{"kind"}),
			audio: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "submitter", Name: "accepted_audio_seconds_total",
				Help: "Audio duration of the jobs ElevenLabs accepted (known durations only).",
			}),
			cost: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Name: "estimated_cost_total",
				Help: "Estimated cost of the jobs ElevenLabs accepted, in the currency of each job's pricing.",
			}, []string{"currency"}),
			toSubmitted: r.transition(StateQueued, StateSubmitted),
			toFailed:    r.transition(StateQueued, StateFailed),
			deadLetters: r.deadLetters.WithLabelValues(event.StreamJobs),
		}
		m.convertDuration.WithLabelValues(ConvertAccepted)
		m.convertDuration.WithLabelValues(ConvertError)
		m.retries.WithLabelValues(RetryError)
		m.retries.WithLabelValues(RetryWait)
		r.reg.MustRegister(m.convertDuration, m.convertErrors, m.inFlight, m.concurrency, m.retries,
			m.audio, m.cost, &slotCollector{m: m, cache: cache[slotReading]{ttl: r.cacheTTL, now: r.now}})
		return m
	})
}

// SetConcurrency records the process's own limit on calls in flight.
func (m *Submitter) SetConcurrency(n int) {
	if m == nil {
		return
	}
	m.concurrency.Set(float64(n))
}

// ConvertStarted counts a call in flight until the returned func reports
// how it ended: err nil when accepted, else its status and kind.
func (m *Submitter) ConvertStarted() (done func(err error, status, kind string)) {
	if m == nil {
		return func(error, string, string) {}
	}
	m.inFlight.Inc()
	start := time.Now()
	return func(err error, status, kind string) {
		m.inFlight.Dec()
		outcome := ConvertAccepted
		if err != nil {
			outcome = ConvertError
			m.convertErrors.WithLabelValues(status, kind).Inc()
		}
		m.convertDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}
}

// Accepted records a job ElevenLabs accepted: its transition to
// submitted, its audio and its estimated cost (duration × the job's
// price per hour × its multiplier; nothing when either is unknown).
func (m *Submitter) Accepted(job *event.Job) {
	if m == nil {
		return
	}
	m.toSubmitted.Inc()
	secs := job.Source.DurationSecs
	if secs <= 0 {
		return
	}
	m.audio.Add(secs)
	if p := job.Pricing; p != nil && p.PerHour > 0 {
		mult := p.Multiplier
		if mult <= 0 {
			mult = 1
		}
		currency := p.Currency
		if currency == "" {
			currency = "unknown"
		}
		m.cost.WithLabelValues(currency).Add(secs / 3600 * p.PerHour * mult)
	}
}

// Failed records a job failed by the submitter.
func (m *Submitter) Failed() {
	if m == nil {
		return
	}
	m.toFailed.Inc()
}

// Retried records a delivery given back; kind is RetryError or RetryWait.
func (m *Submitter) Retried(kind string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(kind).Inc()
}

// DeadLettered records an undecodable job handed to the dead letters.
func (m *Submitter) DeadLettered() {
	if m == nil {
		return
	}
	m.deadLetters.Inc()
}

// WatchSlots makes scrapes report the shared concurrency slots through
// usage. The latest call wins; nil stops the reporting.
func (m *Submitter) WatchSlots(usage SlotUsage) {
	if m == nil {
		return
	}
	if usage == nil {
		m.slots.Store(nil)
		return
	}
	m.slots.Store(&usage)
}

var (
	slotsInUseDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "slots", "in_use"),
		"ElevenLabs concurrency slots held by jobs of every submitter (shared state, read at scrape).", nil, nil)
	slotsLimitDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "slots", "limit"),
		"Current shared concurrency limit: --max-concurrent, lowered while ElevenLabs reports too many requests.", nil, nil)
)

type slotReading struct {
	used, limit int
	ok          bool
}

// slotCollector reads the shared slots at scrape time, through a cache.
type slotCollector struct {
	m     *Submitter
	cache cache[slotReading]
}

func (c *slotCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- slotsInUseDesc
	ch <- slotsLimitDesc
}

func (c *slotCollector) Collect(ch chan<- prometheus.Metric) {
	usage := c.m.slots.Load()
	if usage == nil {
		return
	}
	r := c.cache.get(func() slotReading {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		used, limit, err := (*usage)(ctx)
		return slotReading{used: used, limit: limit, ok: err == nil}
	})
	if !r.ok {
		return // unknown is better left out than reported as 0
	}
	ch <- prometheus.MustNewConstMetric(slotsInUseDesc, prometheus.GaugeValue, float64(r.used))
	ch <- prometheus.MustNewConstMetric(slotsLimitDesc, prometheus.GaugeValue, float64(r.limit))
}
