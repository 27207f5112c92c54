package spool

import (
	"context"
	"fmt"
	"os"
)

// Replay offers every pending record to publish, oldest first, and marks
// each one done (fsynced) once publish returns nil; segments whose records
// are all done are deleted. It returns how many records it replayed and
// stops at the first error — a failed publish is offered again, in order,
// on the next call. Records appended while Replay runs are replayed too.
//
// A crash between publish and the done mark replays that record again, so
// publish must be idempotent. Only one Replay runs at a time; a second call
// waits for the first.
func (s *Spool) Replay(ctx context.Context, publish func(context.Context, Record) error) (int, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	var (
		n     int
		rf    *os.File
		rfSeg *segment
	)
	defer func() {
		if rf != nil {
			_ = rf.Close()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		seg, off, more, err := s.head()
		if err != nil || seg == nil {
			return n, err
		}
		if !more {
			continue // head() retired a finished segment
		}
		if rfSeg != seg {
			if rf != nil {
				_ = rf.Close()
			}
			if rf, err = os.Open(seg.path); err != nil {
				rf, rfSeg = nil, nil
				return n, fmt.Errorf("spool: replay: open segment: %w", err)
			}
			rfSeg = seg
		}
		rec, next, err := readAt(rf, off)
		if err != nil {
			return n, fmt.Errorf("spool: replay: read %s at %d: %w", seg.path, off, err)
		}
		if err := publish(ctx, rec); err != nil {
			return n, fmt.Errorf("spool: replay %s: %w", rec.MsgID, err)
		}
		if err := s.writeDone(seg.seq, next); err != nil {
			return n, err
		}
		s.mu.Lock()
		seg.done = next
		seg.doneN++
		s.pending--
		s.mu.Unlock()
		n++
	}
}

// head returns the oldest segment and the offset of its next record. When
// that segment has no record left it is deleted instead (unless it is
// still taking appends and has grown meanwhile) and more is false. A nil
// segment means the spool is empty.
func (s *Spool) head() (seg *segment, off int64, more bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, false, ErrClosed
	}
	if len(s.segs) == 0 {
		return nil, 0, false, nil
	}
	seg = s.segs[0]
	if seg.done < seg.size {
		return seg, seg.done, true, nil
	}
	// Appends hold mu while writing, so an active segment with nothing
	// pending is idle and can go; the next Append starts a new one.
	if seg == s.active {
		s.seal()
	}
	if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
		return nil, 0, false, fmt.Errorf("spool: remove replayed segment: %w", err)
	}
	s.segs = s.segs[1:]
	s.used -= seg.disk
	// Not strictly needed (a resurrected segment is replayed again, or
	// dropped by the done marker), but it keeps the disk use honest.
	if err := syncDir(s.dir); err != nil {
		return nil, 0, false, err
	}
	return seg, 0, false, nil
}
