package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every scribeq metric.
const Namespace = "scribeq"

// Job states as the transitions counter names them (event.Type values).
const (
	StateQueued    = "queued"
	StateSubmitted = "submitted"
	StateCompleted = "completed"
	StateFailed    = "failed"
)

// Registry is one process's metrics. Its methods are safe for concurrent
// use; on a nil Registry they return nil parts, which do nothing.
type Registry struct {
	reg *prometheus.Registry

	// Shared by the parts: several workers move jobs or dead-letter
	// messages, and in `scribeq dev` they share one registry.
	transitions *prometheus.CounterVec
	deadLetters *prometheus.CounterVec

	// Readings of shared state are cached this long (see cache).
	cacheTTL time.Duration
	now      func() time.Time

	mu         sync.Mutex
	submitter  *Submitter
	ingress    *Ingress
	sink       *Sink
	reconciler *Reconciler
	consumers  *consumerCollector
}

// Option changes how a Registry is made.
type Option func(*Registry)

// WithCacheTTL sets how long scrape-time readings of shared state (consumer
// info, slots) are reused. Default DefaultCacheTTL; 0 or less reads on
// every scrape.
func WithCacheTTL(d time.Duration) Option { return func(r *Registry) { r.cacheTTL = d } }

// DefaultCacheTTL is short next to any scrape interval worth having, long
// enough that several Prometheus servers scraping at once cost one request.
const DefaultCacheTTL = 5 * time.Second

// NewRegistry returns a registry with the Go runtime and process
// collectors and the metrics every part shares.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), cacheTTL: DefaultCacheTTL, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	r.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "job_transitions_total",
		Help:      "Job state changes, counted once by the process that decides them (submitter, ingress, reconciler).",
	}, []string{"from", "to"})
	r.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "dead_letters_total",
		Help:      "Messages that could never be processed and were kept as dead letters, by the stream they came from.",
	}, []string{"stream"})
	r.reg.MustRegister(r.transitions, r.deadLetters)
	return r
}

// Registerer is where extra collectors go; nil on a nil Registry.
func (r *Registry) Registerer() prometheus.Registerer {
	if r == nil {
		return nil
	}
	return r.reg
}

// Gatherer reads the registry (tests, and the /metrics handler).
func (r *Registry) Gatherer() prometheus.Gatherer {
	if r == nil {
		return prometheus.Gatherers{}
	}
	return r.reg
}

// Handler serves the registry in the Prometheus text or OpenMetrics
// format. A collector that fails is left out of that scrape rather than
// failing all of it: a NATS outage must not hide the process's own metrics.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Gatherer(), promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// part returns *slot, making and registering it with mk on first use.
func part[T any](r *Registry, slot **T, mk func() *T) *T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *slot == nil {
		*slot = mk()
	}
	return *slot
}

// transition returns the counter of from → to, so that a part can create
// the children it will use: a series that exists at 0 from the start
// makes rate() right from the first increment.
func (r *Registry) transition(from, to string) prometheus.Counter {
	return r.transitions.WithLabelValues(from, to)
}
