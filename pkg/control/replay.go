package control

import (
	"context"
	"fmt"

	"github.com/scribeq/scribeq/pkg/event"
)

// ReplayDeadLetter sends dead letter id back to the subject it came from,
// then records the replay as an event (the sink sets its replayed_at).
// Replaying what still cannot be processed only makes a new dead letter,
// so it is safe to try after a fix.
func (c *Control) ReplayDeadLetter(ctx context.Context, id int64) (subject string, err error) {
	d, err := c.db.DeadLetter(ctx, id)
	if err != nil {
		return "", err
	}
	// A fresh message id: the original one is still remembered by the
	// stream and would be dropped as a duplicate.
	if err := c.q.PublishRaw(ctx, d.Subject, d.Data, fmt.Sprintf("replay:%d", d.ID)); err != nil {
		return "", fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	if err := c.q.PublishEvent(ctx, &event.Event{
		Type: event.TypeReplayed, DeadLetter: &event.DeadLetter{ID: d.ID}, Process: c.process,
	}); err != nil {
		return "", fmt.Errorf("record replay of dead letter %d: %w", id, err)
	}
	return d.Subject, nil
}
