package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scribeq/scribeq/pkg/event"
)

// Sink is the sink's part.
type Sink struct {
	batchSize      prometheus.Histogram
	commitDuration prometheus.Histogram
	commitErrors   prometheus.Counter
	events         *prometheus.CounterVec
	deadLetters    prometheus.Counter
}

// Sink returns the sink's metrics, registering them on first use.
func (r *Registry) Sink() *Sink {
	if r == nil {
		return nil
	}
	return part(r, &r.sink, func() *Sink {
		m := &Sink{
			batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: Namespace, Subsystem: "sink", Name: "batch_size",
				Help:    "Events applied per committed Postgres transaction.",
				Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500},
			}),
			commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: Namespace, Subsystem: "sink", Name: "commit_duration_seconds",
				Help:    "Time to apply and commit one batch of events, retries inside the store included.",
				Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
			}),
			commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "sink", Name: "commit_errors_total",
				Help: "Batches whose transaction failed (their events are retried or isolated).",
			}),
			events: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "sink", Name: "events_total",
				Help: "Events committed to Postgres, by type; a replayed event is counted again.",
			}, []string{"type"}),
			deadLetters: r.deadLetters.WithLabelValues(event.StreamEvents),
		}
		for _, t := range []event.Type{event.TypeQueued, event.TypeSubmitted, event.TypeCompleted, event.TypeFailed} {
			m.events.WithLabelValues(string(t))
		}
		r.reg.MustRegister(m.batchSize, m.commitDuration, m.commitErrors, m.events)
		return m
	})
}

// Commit records one transaction of events that took took; err is its
// result. Only committed batches are observed in the histograms.
func (m *Sink) Commit(events int, took time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.batchSize.Observe(float64(events))
	m.commitDuration.Observe(took.Seconds())
}

// Applied counts one committed event of type t.
func (m *Sink) Applied(t event.Type) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(string(t)).Inc()
}

// DeadLettered counts an event the sink kept as a dead letter.
func (m *Sink) DeadLettered() {
	if m == nil {
		return
	}
	m.deadLetters.Inc()
}
