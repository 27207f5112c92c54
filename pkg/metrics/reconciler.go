package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// What became of a stuck job the reconciler looked at
// (scribeq_reconciler_recoveries_total).
const (
	RecoveryRecovered = "recovered"  // transcript fetched and published: completed
	RecoveryLost      = "lost"       // ElevenLabs no longer knows it: failed
	RecoveryWaiting   = "waiting"    // 404 too early to call lost; asked again later
	RecoveryMissingID = "missing_id" // no transcription_id: cannot be fetched
	RecoverySkipped   = "skipped"    // handled recently, or the round was cut short
	RecoveryError     = "error"      // fetch or publish failed; retried next round
)

var recoveryOutcomes = []string{
	RecoveryRecovered, RecoveryLost, RecoveryWaiting, RecoveryMissingID, RecoverySkipped, RecoveryError,
}

// Reconciler is the reconciler's part.
type Reconciler struct {
	recoveries  *prometheus.CounterVec
	rounds      *prometheus.CounterVec
	lastRound   prometheus.Gauge
	unhealthy   prometheus.Gauge
	toCompleted prometheus.Counter
	toFailed    prometheus.Counter
}

// Reconciler returns the reconciler's metrics, registering them on first use.
func (r *Registry) Reconciler() *Reconciler {
	if r == nil {
		return nil
	}
	return part(r, &r.reconciler, func() *Reconciler {
		m := &Reconciler{
			recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "reconciler", Name: "recoveries_total",
				Help: "Stuck jobs the reconciler looked at, by outcome (recovered: transcript fetched because its webhook never came).",
			}, []string{"outcome"}),
			rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "reconciler", Name: "rounds_total",
				Help: "Reconciler rounds, by result (error: the stuck jobs could not be read).",
			}, []string{"result"}),
			lastRound: prometheus.NewGauge(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "reconciler", Name: "last_round_timestamp_seconds",
				Help: "When the last round that read the stuck jobs ended (Unix time).",
			}),
			unhealthy: prometheus.NewGauge(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "reconciler", Name: "webhooks_unhealthy",
				Help: "1 when the last round recovered so many transcripts that webhooks are evidently not arriving.",
			}),
			toCompleted: r.transition(StateSubmitted, StateCompleted),
			toFailed:    r.transition(StateSubmitted, StateFailed),
		}
		for _, o := range recoveryOutcomes {
			m.recoveries.WithLabelValues(o)
		}
		m.rounds.WithLabelValues("ok")
		m.rounds.WithLabelValues("error")
		r.reg.MustRegister(m.recoveries, m.rounds, m.lastRound, m.unhealthy)
		return m
	})
}

// Outcome counts n stuck jobs with outcome (a Recovery* constant);
// recovered and lost jobs are job transitions too.
func (m *Reconciler) Outcome(outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.recoveries.WithLabelValues(outcome).Add(float64(n))
	switch outcome {
	case RecoveryRecovered:
		m.toCompleted.Add(float64(n))
	case RecoveryLost:
		m.toFailed.Add(float64(n))
	}
}

// Round records a round that ended at, with err when the stuck jobs could
// not be read, and whether webhooks looked unhealthy.
func (m *Reconciler) Round(at time.Time, unhealthy bool, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.rounds.WithLabelValues("error").Inc()
		return
	}
	m.rounds.WithLabelValues("ok").Inc()
	m.lastRound.Set(float64(at.UnixNano()) / 1e9)
	if unhealthy {
		m.unhealthy.Set(1)
	} else {
		m.unhealthy.Set(0)
	}
}
