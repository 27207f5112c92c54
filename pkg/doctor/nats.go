package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// store is a JetStream stream scribeq needs, with who creates it.
type store struct {
	name     string // the check's name
	stream   string // the JetStream stream behind it
	subjects []string
}

// stores are JOBS and EVENTS, then the object stores and key-value buckets
// queue.Open creates; JetStream backs each bucket with a stream named
// OBJ_<bucket> or KV_<bucket>.
var stores = []store{
	{name: "stream " + event.StreamJobs, stream: event.StreamJobs, subjects: []string{event.SubjectJobs}},
	{name: "stream " + event.StreamEvents, stream: event.StreamEvents, subjects: []string{event.SubjectEvents}},
	{name: "object store " + event.BucketAudio, stream: "OBJ_" + event.BucketAudio},
	{name: "object store " + event.BucketPayloads, stream: "OBJ_" + event.BucketPayloads},
	{name: "kv " + event.BucketIntake, stream: "KV_" + event.BucketIntake},
	{name: "kv " + event.BucketSubmissions, stream: "KV_" + event.BucketSubmissions},
	{name: "kv " + event.BucketWebhooks, stream: "KV_" + event.BucketWebhooks},
	{name: "kv " + event.BucketSlots, stream: "KV_" + event.BucketSlots},
}

// consumers are the durable pull consumers the workers share.
var consumers = []struct{ stream, name, worker string }{
	{event.StreamJobs, queue.ConsumerSubmitter, "scribeq submitter"},
	{event.StreamEvents, queue.ConsumerSink, "scribeq sink"},
}

const fixCreate = "start any scribeq worker (submitter, ingress, sink) or run 'scribeq submit': each creates the streams and buckets it needs at start"

func checkNATS(ctx context.Context, cfg Config) []Result {
	rs := &results{group: GroupNATS}
	if cfg.NatsURL == "" {
		rs.fail("connection", "no NATS URL", "set SCRIBEQ_NATS_URL (or --nats-url), e.g. nats://nats:4222")
		return rs.list
	}
	where := redactURL(cfg.NatsURL)
	// No reconnects: a doctor that waits for a server that is down tells
	// nothing; say so at once.
	timeout := time.Until(deadlineOf(ctx, cfg.Timeout))
	nc, err := nats.Connect(cfg.NatsURL, nats.Name("scribeq-doctor"), nats.Timeout(timeout), nats.MaxReconnects(0),
		nats.NoCallbacksAfterClientClose())
	if err != nil {
		rs.fail("connection", fmt.Sprintf("%s: %v", where, err),
			"start NATS (docker compose up -d nats) or point SCRIBEQ_NATS_URL at it; check credentials, TLS and firewalls")
		return rs.list
	}
	defer nc.Close()
	rs.ok("connection", fmt.Sprintf("%s (nats-server %s)", where, nc.ConnectedServerVersion()))

	js, err := jetstream.New(nc)
	if err != nil {
		rs.fail("jetstream", err.Error(), "")
		return rs.list
	}
	acct, err := js.AccountInfo(ctx)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		rs.fail("jetstream", "JetStream is not enabled: "+err.Error(),
			"run nats-server with JetStream on file storage: -js -sd /data (or 'jetstream { store_dir: /data }' in its config),\n"+
				"and sync_interval: always so an OS crash loses nothing; on an account, enable JetStream for it")
		return rs.list
	case err != nil:
		rs.fail("jetstream", "account info: "+err.Error(), "check that JetStream answers: nats account info")
		return rs.list
	}
	detail := fmt.Sprintf("enabled; %d streams, %d consumers, %s stored", acct.Streams, acct.Consumers, bytesOf(acct.Store))
	if acct.Domain != "" {
		detail += ", domain " + acct.Domain
	}
	rs.ok("jetstream", detail)

	missing := map[string]bool{}
	for _, st := range stores {
		if !checkStore(ctx, rs, js, st, cfg) {
			missing[st.stream] = true
		}
	}
	for _, c := range consumers {
		name := "consumer " + c.name
		if missing[c.stream] {
			rs.skip(name, "stream "+c.stream+" is missing")
			continue
		}
		checkConsumer(ctx, rs, js, c.stream, c.name, c.worker, cfg)
	}
	return rs.list
}

// checkStore checks one stream; false when it does not exist.
func checkStore(ctx context.Context, rs *results, js jetstream.JetStream, st store, cfg Config) bool {
	s, err := js.Stream(ctx, st.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		rs.fail(st.name, "missing (stream "+st.stream+")", fixCreate)
		return false
	}
	if err != nil {
		rs.fail(st.name, "stream info: "+err.Error(), "check the NATS server's JetStream health: nats server report jetstream")
		return true
	}
	info := s.CachedInfo()
	sc := info.Config
	var v verdict
	if sc.Storage != jetstream.FileStorage {
		v.problem(Fail, "memory storage",
			"memory streams lose every message when NATS restarts: delete the stream ("+
				"nats stream rm "+st.stream+") while nothing is queued and let a worker create it again on file storage")
	}
	for _, subj := range st.subjects {
		if !slices.Contains(sc.Subjects, subj) {
			v.problem(Fail, fmt.Sprintf("does not take subject %s (has %s)", subj, strings.Join(sc.Subjects, ", ")),
				"start a worker of this scribeq version: it updates the stream's subjects")
		}
	}
	if len(st.subjects) > 0 {
		if sc.Retention != jetstream.LimitsPolicy {
			v.problem(Warn, "retention "+sc.Retention.String()+", not limits",
				"scribeq relies on limits retention for its duplicate window (RELIABILITY.md); recreate the stream")
		}
		if sc.Duplicates <= 0 {
			v.problem(Warn, "no duplicate window", "a worker of this version sets it at start")
		}
	}
	if sc.Replicas < cfg.Replicas {
		v.problem(Warn, fmt.Sprintf("%d replica(s), want %d", sc.Replicas, cfg.Replicas),
			fmt.Sprintf("start a worker with SCRIBEQ_REPLICAS=%d (it updates the stream), or: nats stream edit %s --replicas %d",
				cfg.Replicas, st.stream, cfg.Replicas))
	}
	clusterProblems(&v, info.Cluster)
	detail := fmt.Sprintf("%s, %d msgs, %s, %d replica(s)", storageName(sc.Storage), info.State.Msgs, bytesOf(info.State.Bytes), sc.Replicas)
	if st.stream == event.StreamJobs || st.stream == event.StreamEvents {
		detail += fmt.Sprintf(", %d consumer(s)", info.State.Consumers)
	}
	v.emit(rs, st.name, detail)
	return true
}

func checkConsumer(ctx context.Context, rs *results, js jetstream.JetStream, stream, name, worker string, cfg Config) {
	check := "consumer " + name
	c, err := js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		rs.fail(check, fmt.Sprintf("missing on %s", stream), fmt.Sprintf("start '%s': it creates the %q consumer at start", worker, name))
		return
	}
	if err != nil {
		rs.fail(check, "consumer info: "+err.Error(), "check the NATS server's JetStream health: nats server report jetstream")
		return
	}
	ci := c.CachedInfo()
	var v verdict
	if ci.Config.AckPolicy != jetstream.AckExplicitPolicy {
		v.problem(Fail, "ack policy "+ci.Config.AckPolicy.String(),
			fmt.Sprintf("delete it (nats consumer rm %s %s) and start '%s' to create it correctly", stream, name, worker))
	}
	if ci.Paused {
		v.problem(Warn, "paused", fmt.Sprintf("resume it: nats consumer resume %s %s", stream, name))
	}
	if ci.Config.MaxAckPending > 0 && ci.NumAckPending >= ci.Config.MaxAckPending {
		v.problem(Warn, fmt.Sprintf("at its ack-pending limit (%d)", ci.Config.MaxAckPending),
			fmt.Sprintf("the %s workers hold as many messages as allowed without finishing them: look at their logs, or add workers", name))
	}
	if ci.NumPending > 0 && ci.NumWaiting == 0 && ci.NumAckPending == 0 {
		last := ci.Delivered.Last
		if last == nil || cfg.Now().Sub(*last) > cfg.IdleAfter {
			since := "never delivered"
			if last != nil {
				since = "last delivery " + cfg.Now().Sub(*last).Round(time.Second).String() + " ago"
			}
			v.problem(Warn, fmt.Sprintf("no worker is pulling (%s)", since), fmt.Sprintf("start '%s' (or check why it stopped)", worker))
		}
	}
	clusterProblems(&v, ci.Cluster)
	detail := fmt.Sprintf("pending %d, ack pending %d, redelivered %d, waiting pulls %d",
		ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
	v.emit(rs, check, detail)
}

// clusterProblems flags a stream or consumer without a leader (it accepts
// nothing) or with replicas that are offline or behind.
func clusterProblems(v *verdict, ci *jetstream.ClusterInfo) {
	if ci == nil || (ci.Name == "" && len(ci.Replicas) == 0) {
		return
	}
	if ci.Leader == "" {
		v.problem(Fail, "no leader", "bring the NATS cluster back to a quorum: nats server report jetstream")
	}
	for _, p := range ci.Replicas {
		switch {
		case p.Offline:
			v.problem(Warn, "replica "+p.Name+" offline", "restart or replace NATS server "+p.Name)
		case !p.Current:
			v.problem(Warn, fmt.Sprintf("replica %s behind by %d", p.Name, p.Lag), "")
		}
	}
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.FileStorage {
		return "file"
	}
	return "memory"
}

func bytesOf(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// redactURL hides passwords and tokens before a URL (or a comma-separated
// list of them, as NATS takes) is printed.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		} else if u.User.Username() != "" && u.Scheme != "postgres" && u.Scheme != "postgresql" {
			// nats://TOKEN@host: the user part is the secret.
			u.User = url.User("redacted")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "token") {
			q.Set(k, "redacted")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func deadlineOf(ctx context.Context, fallback time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(fallback)
}
