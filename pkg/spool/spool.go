// Package spool is a local, append-only, fsynced log of messages that could
// not be published, so that a process can promise "stored" while its broker
// is unreachable and publish them later.
//
// The ingress uses it for verified webhooks: ElevenLabs sends each webhook
// once, so when NATS is down the only alternatives to a spool are losing the
// transcript or answering 503 (which also loses it, and counts towards the
// webhook being disabled).
//
// # Layout
//
// A spool directory holds numbered segment files (00000000000000000001.seg,
// ...) of length- and CRC-framed records, a "done" file and a LOCK file.
// Append writes to the newest segment and fsyncs it (and the directory when
// it creates a segment) before returning. Replay hands records to a publish
// function oldest first; after each successful publish it records the
// segment and offset reached in "done" and fsyncs it, and it deletes a
// segment once every record in it is done. A crash therefore either replays
// a record again or knows it done — never skips one — so publishing must be
// idempotent (JetStream's Nats-Msg-Id dedupe).
//
// After a crash the last record of a segment may be partly written. Open
// detects it by its length and CRC, ignores it (it was never acknowledged)
// and appends to a new segment, so nothing valid is ever overwritten.
package spool

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

var (
	// ErrFull means the record would take the spool past its MaxBytes.
	ErrFull = errors.New("spool: full")
	// ErrClosed means the spool was closed.
	ErrClosed = errors.New("spool: closed")
)

// Config tunes a spool. The zero value is usable.
type Config struct {
	// MaxBytes caps the segment files on disk, records already replayed but
	// not yet deleted included; beyond it Append returns ErrFull.
	// Default 1 GiB.
	MaxBytes int64
	// SegmentBytes: a segment takes no more appends once it reaches this
	// size, so that replayed records are deleted segment by segment during
	// a long outage. Default 64 MiB.
	SegmentBytes int64
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

const (
	segmentExt = ".seg"
	doneName   = "done"
	lockName   = "LOCK"
	doneLen    = 20 // segment seq, offset, CRC-32C of both
)

type segment struct {
	seq     uint64
	path    string
	size    int64 // end of the last valid record
	disk    int64 // bytes on disk, torn tails included
	records int   // valid records
	done    int64 // offset replayed up to
	doneN   int   // records replayed
}

// Spool is safe for concurrent use: appends are serialised, and one Replay
// at a time runs alongside them.
type Spool struct {
	dir string
	cfg Config
	log *slog.Logger

	lock *os.File

	replayMu sync.Mutex // one Replay at a time; guards doneFile writes
	doneFile *os.File

	mu      sync.Mutex
	closed  bool
	segs    []*segment // oldest first
	active  *segment   // takes appends; nil until the first Append after Open or a rotation
	actFile *os.File
	nextSeq uint64
	used    int64
	pending int
}

// Open opens (creating if needed) the spool in dir and takes an exclusive
// lock on it: two processes appending to one spool would interleave their
// segments. Records left by an earlier run are pending again, except those
// its done marker says were replayed.
func Open(dir string, cfg Config) (*Spool, error) {
	if dir == "" {
		return nil, errors.New("spool: dir is required")
	}
	cfg = cfg.withDefaults()
	// Transcripts are customer data: only this user may read them.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spool: lock %s: %w", dir, err)
	}
	s := &Spool{dir: dir, cfg: cfg, log: cfg.Logger, lock: lock}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Spool) load() error {
	var err error
	if s.doneFile, err = os.OpenFile(filepath.Join(s.dir, doneName), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return fmt.Errorf("spool: open done marker: %w", err)
	}
	doneSeq, doneOff := s.readDone()

	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: list %s: %w", s.dir, err)
	}
	removed := false
	maxSeq := doneSeq
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		maxSeq = max(maxSeq, seq)
		path := filepath.Join(s.dir, name)
		// The marker only moves to a segment once every older one is
		// replayed, so older ones left behind are done.
		if seq < doneSeq {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: remove replayed segment %s: %w", name, err)
			}
			removed = true
			continue
		}
		seg, err := s.loadSegment(seq, path, doneSeq, doneOff)
		if err != nil {
			return err
		}
		if seg.disk == 0 {
			// Created, then a crash before the first record was synced.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: remove empty segment %s: %w", name, err)
			}
			removed = true
			continue
		}
		s.segs = append(s.segs, seg)
		s.used += seg.disk
		s.pending += seg.records - seg.doneN
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmp.Compare(a.seq, b.seq) })
	s.nextSeq = maxSeq + 1
	if removed {
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	if s.pending > 0 {
		s.log.Warn("spool holds records from an earlier run", "dir", s.dir, "pending", s.pending, "bytes", s.used)
	}
	return nil
}

func (s *Spool) loadSegment(seq uint64, path string, doneSeq uint64, doneOff int64) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: stat segment: %w", err)
	}
	seg := &segment{seq: seq, path: path, disk: st.Size()}
	size, err := scan(f, func(start, end int64) {
		seg.records++
		if seq == doneSeq && end <= doneOff {
			seg.done, seg.doneN = end, seg.doneN+1
		}
	})
	if err != nil {
		return nil, fmt.Errorf("spool: read segment %s: %w", path, err)
	}
	seg.size = size
	if torn := seg.disk - size; torn > 0 {
		s.log.Warn("spool: ignoring a torn or corrupt tail (a write cut short by a crash; it was never acknowledged)",
			"segment", filepath.Base(path), "offset", size, "bytes", torn)
	}
	return seg, nil
}

// readDone returns the segment and offset replayed up to; a missing or
// damaged marker means nothing is known done, so everything is replayed
// again (harmless: publishing is idempotent).
func (s *Spool) readDone() (uint64, int64) {
	var b [doneLen]byte
	n, _ := s.doneFile.ReadAt(b[:], 0)
	if n == 0 {
		return 0, 0
	}
	if n < doneLen || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		s.log.Warn("spool: done marker is damaged; replaying every record", "dir", s.dir)
		return 0, 0
	}
	return binary.LittleEndian.Uint64(b[0:8]), int64(binary.LittleEndian.Uint64(b[8:16]))
}

// writeDone is called with replayMu held. The marker is rewritten in place:
// 20 bytes inside one sector, and a torn one fails its CRC and only costs
// a replay.
func (s *Spool) writeDone(seq uint64, off int64) error {
	var b [doneLen]byte
	binary.LittleEndian.PutUint64(b[0:8], seq)
	binary.LittleEndian.PutUint64(b[8:16], uint64(off))
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	if _, err := s.doneFile.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("spool: write done marker: %w", err)
	}
	if err := s.doneFile.Sync(); err != nil {
		return fmt.Errorf("spool: sync done marker: %w", err)
	}
	return nil
}

// Append stores rec durably: it returns nil only once the record is written
// and fsynced (and, for a new segment, the directory entry too). It returns
// an error wrapping ErrFull when the spool has no room for rec.
func (s *Spool) Append(rec Record) error {
	if rec.Subject == "" || rec.MsgID == "" {
		return errors.New("spool: append: record needs a subject and a msg id")
	}
	frame := encode(rec)
	size := int64(len(frame))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.used+size > s.cfg.MaxBytes {
		return fmt.Errorf("%w: %d of %d bytes used, record %s needs %d", ErrFull, s.used, s.cfg.MaxBytes, rec.MsgID, size)
	}
	if s.active != nil && s.active.size > 0 && s.active.size+size > s.cfg.SegmentBytes {
		s.seal()
	}
	if s.active == nil {
		if err := s.newSegment(); err != nil {
			return err
		}
	}
	seg := s.active
	_, err := s.actFile.WriteAt(frame, seg.size)
	if err == nil {
		err = s.actFile.Sync()
	}
	if end := seg.size + size; end > seg.disk {
		s.used += end - seg.disk
		seg.disk = end
	}
	if err != nil {
		// What reached the disk is unknown, and after a failed fsync the
		// page cache cannot be trusted: leave this segment to the replayer
		// as it was and start a fresh one next time.
		s.seal()
		return fmt.Errorf("spool: append %s: %w", rec.MsgID, err)
	}
	seg.size += size
	seg.records++
	s.pending++
	return nil
}

func (s *Spool) newSegment() error {
	seq := s.nextSeq
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentExt))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	s.nextSeq++
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	s.active, s.actFile = &segment{seq: seq, path: path}, f
	s.segs = append(s.segs, s.active)
	return nil
}

// seal stops appends to the active segment; it stays for the replayer.
func (s *Spool) seal() {
	if s.actFile != nil {
		_ = s.actFile.Close()
	}
	s.active, s.actFile = nil, nil
}

// Pending is the number of records not yet replayed.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Bytes is the disk space the spool counts against MaxBytes.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// MaxBytes is the configured cap.
func (s *Spool) MaxBytes() int64 { return s.cfg.MaxBytes }

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Close waits for a running Replay (cancel its context first), closes the
// files and releases the lock. Pending records stay on disk for the next
// Open. Close is idempotent.
func (s *Spool) Close() error {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.seal()
	return s.closeFiles()
}

func (s *Spool) closeFiles() error {
	var errs []error
	if s.doneFile != nil {
		errs = append(errs, s.doneFile.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // closing releases the flock
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// syncDir makes creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("spool: sync dir %s: %w", dir, err)
	}
	return nil
}
