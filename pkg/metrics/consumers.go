package metrics

import (
	"context"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerRef names a durable JetStream consumer.
type ConsumerRef struct {
	Stream   string
	Consumer string
}

// ConsumerSource looks a consumer up; jetstream.JetStream is one.
type ConsumerSource interface {
	Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error)
}

var (
	consumerLabels      = []string{"stream", "consumer"}
	consumerPendingDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "consumer", "pending_messages"),
		"Messages the consumer has not delivered yet (its backlog).", consumerLabels, nil)
	consumerAckPendingDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "consumer", "ack_pending_messages"),
		"Messages delivered and not acknowledged yet (work in progress).", consumerLabels, nil)
	consumerRedeliveredDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "consumer", "redelivered_messages"),
		"Messages delivered more than once and not acknowledged yet.", consumerLabels, nil)
	consumerWaitingDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "consumer", "waiting_pulls"),
		"Pull requests waiting for messages (idle workers).", consumerLabels, nil)
	consumerUpDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "consumer", "info_up"),
		"1 when the last consumer info request succeeded; 0 when NATS did not answer or the consumer does not exist.", consumerLabels, nil)
)

// WatchConsumers makes scrapes report the pending, ack-pending and
// redelivered counts of the named consumers, asked of src (cached for the
// registry's cache TTL). Call it once per process with the consumers that
// process owns, so that each backlog is reported by its own workers; more
// calls add consumers, and the latest src is used.
func (r *Registry) WatchConsumers(src ConsumerSource, refs ...ConsumerRef) {
	if r == nil || src == nil {
		return
	}
	r.mu.Lock()
	c := r.consumers
	if c == nil {
		c = &consumerCollector{cache: cache[[]consumerReading]{ttl: r.cacheTTL, now: r.now}}
		r.consumers = c
		r.reg.MustRegister(c)
	}
	r.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = src
	for _, ref := range refs {
		if !slices.Contains(c.refs, ref) {
			c.refs = append(c.refs, ref)
		}
	}
	c.cache.invalidate()
}

type consumerReading struct {
	ref  ConsumerRef
	info *jetstream.ConsumerInfo // nil when it could not be read
}

type consumerCollector struct {
	mu    sync.Mutex
	src   ConsumerSource
	refs  []ConsumerRef
	cache cache[[]consumerReading]
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		consumerPendingDesc, consumerAckPendingDesc, consumerRedeliveredDesc, consumerWaitingDesc, consumerUpDesc,
	} {
		ch <- d
	}
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src, refs := c.src, slices.Clone(c.refs)
	c.mu.Unlock()
	readings := c.cache.get(func() []consumerReading {
		out := make([]consumerReading, 0, len(refs))
		for _, ref := range refs {
			out = append(out, consumerReading{ref: ref, info: readConsumer(src, ref)})
		}
		return out
	})
	gauge := func(d *prometheus.Desc, v float64, ref ConsumerRef) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, ref.Stream, ref.Consumer)
	}
	for _, r := range readings {
		if r.info == nil {
			// Stale counts would look like a healthy, stuck backlog.
			gauge(consumerUpDesc, 0, r.ref)
			continue
		}
		gauge(consumerUpDesc, 1, r.ref)
		gauge(consumerPendingDesc, float64(r.info.NumPending), r.ref)
		gauge(consumerAckPendingDesc, float64(r.info.NumAckPending), r.ref)
		gauge(consumerRedeliveredDesc, float64(r.info.NumRedelivered), r.ref)
		gauge(consumerWaitingDesc, float64(r.info.NumWaiting), r.ref)
	}
}

// readConsumer asks for one consumer's info: looking a consumer up fetches
// its info, so one request per consumer.
func readConsumer(src ConsumerSource, ref ConsumerRef) *jetstream.ConsumerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	cons, err := src.Consumer(ctx, ref.Stream, ref.Consumer)
	if err != nil {
		return nil
	}
	return cons.CachedInfo()
}
