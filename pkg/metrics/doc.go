// Package metrics holds scribeq's Prometheus metrics and the small HTTP
// server that exposes them with the health probes.
//
// # One registry per process
//
// NewRegistry makes a registry of its own (never the global default), with
// the Go and process collectors, so tests build as many as they like
// without clashing. Each worker asks it for its part — Submitter, Ingress,
// Sink, Reconciler — which registers that part's metrics on first use, so a
// process exposes only the metrics of the workers it runs (`scribeq dev`
// runs them all and exposes all).
//
// # Nil means off
//
// A nil *Registry hands out nil parts, and every method of a nil part does
// nothing. Workers keep their part in their Config and call it
// unconditionally; a Config without metrics costs nothing and changes
// nothing.
//
// # Who counts what
//
// scribeq_job_transitions_total counts each state change once across the
// fleet, in the process that decides it: the submitter (queued → submitted
// or failed), the ingress (submitted → completed, from a webhook) and the
// reconciler (submitted → completed or failed, by polling). The sink only
// records what it applied (scribeq_sink_events_total), since a replayed
// event is applied again without being a new transition.
//
// Gauges that describe shared state (JetStream consumers, the shared
// concurrency slots) are read when Prometheus scrapes, and cached for a
// few seconds so that frequent scrapes do not load NATS.
package metrics
