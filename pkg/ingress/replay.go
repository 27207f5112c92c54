package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/spool"
)

// maxSpoolRetry caps the backoff between replay attempts while NATS keeps
// refusing: long enough not to flood the log, short enough that the spool
// drains soon after an outage.
const maxSpoolRetry = 30 * time.Second

// spoolEvent stores the whole event — not the claim-check reference — so
// the replay goes through PublishEvent and stores a large payload then.
func (in *Ingress) spoolEvent(ev *event.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("ingress: encode event %s for the spool: %w", ev.MsgID(), err)
	}
	return in.spool.Append(spool.Record{Subject: ev.Type.Subject(), MsgID: ev.MsgID(), Data: data})
}

// replayLoop publishes spooled events whenever the spool holds some and
// NATS is connected, starting with what an earlier run left behind.
func (in *Ingress) replayLoop(ctx context.Context) {
	wait := in.cfg.SpoolRetry
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if in.q.NC.IsClosed() {
			// The owner closed the queue without closing us first; the
			// spool keeps its records for the next start.
			if n := in.spool.Pending(); n > 0 {
				in.log.Warn("nats connection closed; spooled webhooks wait for the next start", "spool_pending", n, "spool_dir", in.spool.Dir())
			}
			return
		}
		if in.spool.Pending() == 0 || !in.q.NC.IsConnected() {
			t.Reset(in.cfg.SpoolRetry)
			continue
		}
		n, err := in.spool.Replay(ctx, in.replayRecord)
		if n > 0 {
			in.log.Info("spooled webhooks published", "count", n, "spool_pending", in.spool.Pending())
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			in.log.Warn("spool replay stopped; will retry", "err", err, "spool_pending", in.spool.Pending(), "retry_in", wait)
			t.Reset(wait)
			wait = min(2*wait, maxSpoolRetry)
			continue
		}
		if n > 0 && in.spool.Pending() == 0 {
			in.log.Warn("spool drained: every spooled webhook is now on NATS")
		}
		wait = in.cfg.SpoolRetry
		t.Reset(wait)
	}
}

// replayRecord publishes one spooled event with its original message id;
// JetStream drops it if the publish that failed had in fact been stored.
func (in *Ingress) replayRecord(ctx context.Context, rec spool.Record) error {
	var ev event.Event
	if err := json.Unmarshal(rec.Data, &ev); err != nil {
		return fmt.Errorf("ingress: decode spooled event %s: %w", rec.MsgID, err)
	}
	if ev.MsgID() != rec.MsgID {
		return fmt.Errorf("ingress: spooled event has msg id %s, record says %s", ev.MsgID(), rec.MsgID)
	}
	log := in.log.With("job_id", ev.JobID, "request_id", ev.RequestID, "transcription_id", ev.TranscriptionID)
	ctx, cancel := context.WithTimeout(ctx, in.cfg.PublishTimeout)
	defer cancel()
	if err := in.q.PublishEvent(ctx, &ev); err != nil {
		log.Debug("spooled webhook not published yet", "err", err)
		return err
	}
	in.markWebhook(ctx, log, &ev)
	in.m.Replayed()
	log.Info("spooled webhook published")
	return nil
}
