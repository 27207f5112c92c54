package intake

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// Queue stores each Ready item's audio in the AUDIO object store and
// publishes its job and `queued` event, and returns every item's Result
// (the plan's, with Ready ones settled) in the plan's order. onProgress, if
// set, is called from this goroutine as bytes are uploaded and as each
// item is settled.
//
// Items are sent one at a time; a tar archive is read once more from the
// start and only the entries needed are uploaded, a zip's entries are
// reopened. When ctx is done, the upload under way stops (its partial
// object is removed), the items not reached are reported Failed, and the
// error is ctx's; running the same submit again finishes them. A Plan can
// be queued once.
func (p *Plan) Queue(ctx context.Context, onProgress func(Progress)) ([]Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used {
		return nil, errPlanUsed
	}
	p.used = true

	t := &tracker{on: onProgress, counted: map[string]bool{}}
	t.p.Total, t.p.TotalBytes = p.Totals.Items, p.Totals.UploadBytes
	done := map[*item]bool{}
	var fatal error
	for i, it := range p.items {
		if it.res.Status != Ready || done[it] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		switch it.kind {
		case kindZip, kindTar:
			// Every Ready entry of this archive, in one go.
			var group []*item
			for _, o := range p.items[i:] {
				if o.res.Status == Ready && o.kind == it.kind && o.path == it.path && !done[o] {
					group = append(group, o)
					done[o] = true
				}
			}
			if it.kind == kindZip {
				fatal = p.queueZip(ctx, it.path, group, t)
			} else {
				fatal = p.queueTar(ctx, it.path, group, t)
			}
		default:
			done[it] = true
			fatal = p.queueItem(ctx, it, fileOpener(it.path), t)
		}
		if fatal != nil {
			break
		}
	}
	for _, it := range p.items {
		if it.res.Status == Ready {
			it.res.Status, it.res.Reason = Failed, "not queued: the submit was interrupted (run it again to finish)"
			t.settle(it)
		}
	}
	out := make([]Result, len(p.items))
	for i, it := range p.items {
		out[i] = it.res
	}
	p.Results = out
	if fatal == nil {
		fatal = ctx.Err()
	}
	return out, fatal
}

type opener func() (io.ReadCloser, error)

func fileOpener(path string) opener {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}

// queueItem claims, stores and publishes one item. It returns an error only
// when the whole Queue must stop (ctx done); an item's own failure is in
// its Result.
func (p *Plan) queueItem(ctx context.Context, it *item, open opener, t *tracker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.p.Current = it.res.Source
	// NATS restarting under a long submit must not cost the user a re-run:
	// every step below is safe to repeat, so wait for it to come back.
	deadline := time.Now().Add(p.in.cfg.RetryFor)
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		err := p.sendItem(ctx, it, open, t)
		if err == nil || ctx.Err() != nil || !queue.Transient(err) || time.Now().Add(wait).After(deadline) {
			return p.settleItem(ctx, it, t, err)
		}
		p.in.log.Warn("NATS unavailable; retrying the item", "source", it.res.Source, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// opTimeout bounds one key-value request: while NATS reconnects a request
// waits for an answer that will not come, and the item's retry loop can
// only act on an error.
const opTimeout = 10 * time.Second

func withTimeout(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return fn(ctx)
}

func withTimeout2[A, B any](ctx context.Context, fn func(context.Context) (A, B, error)) (A, B, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return fn(ctx)
}

// settleItem reports an item's failure; only ctx ending stops the Queue.
func (p *Plan) settleItem(ctx context.Context, it *item, t *tracker, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		// Leave the item Ready: Queue reports it interrupted.
		return cerr
	}
	it.res.Status, it.res.Reason = Failed, err.Error()
	t.settle(it)
	return nil
}

// sendItem is one try at queueing an item; it settles the item on success.
func (p *Plan) sendItem(ctx context.Context, it *item, open opener, t *tracker) error {
	in := p.in
	job := *it.job
	job.At = time.Now().UTC()
	claimed, queued, err := withTimeout2(ctx, func(ctx context.Context) (*event.Job, bool, error) { return in.claim(ctx, &job) })
	if err != nil {
		return err
	}
	if queued {
		t.skipBytes(it)
		it.res.Status, it.res.Reason = AlreadySubmitted, "already submitted with the same options (by another submit meanwhile)"
		t.settle(it)
		return nil
	}
	// Resumed: the scan or the claim found an earlier submit's claim.
	if claimed == &job {
		it.claimedHere = true
	}
	resumed := !it.claimedHere || it.res.Reason != ""
	if it.sum != "" {
		if err := p.store(ctx, it, open, t); err != nil {
			return err
		}
	}
	if _, err := in.q.PublishJob(ctx, claimed); err != nil {
		return err
	}
	if err := in.q.PublishEvent(ctx, &event.Event{
		Type: event.TypeQueued, JobID: claimed.JobID, At: claimed.At, Job: claimed, Process: in.Process,
	}); err != nil {
		return err
	}
	if err := withTimeout(ctx, func(ctx context.Context) error { return in.markQueued(ctx, claimed.JobID) }); err != nil {
		// The job is queued; a re-run finds the claim and publishes the
		// same messages again, which JetStream deduplicates.
		in.log.Warn("job queued, but its intake record still says claimed", "job_id", claimed.JobID, "err", err)
	}
	in.log.Debug("job queued", "job_id", claimed.JobID, "source", it.res.Source)
	it.res.Status, it.res.Reason = Queued, ""
	if resumed {
		it.res.Reason = "finished an interrupted submit"
	}
	t.settle(it)
	return nil
}

// errChanged means the bytes read for upload are not the ones scanned.
var errChanged = errors.New("its content changed since it was scanned; run submit again")

// store streams an item into AUDIO under its sha256, unless the same bytes
// are there already, and checks on the way that they are the scanned bytes.
func (p *Plan) store(ctx context.Context, it *item, open opener, t *tracker) error {
	in := p.in
	var ok bool
	err := withTimeout(ctx, func(ctx context.Context) (err error) { ok, err = in.stored(ctx, it.sum, it.res.Bytes); return err })
	if err != nil {
		return err
	}
	if ok {
		t.skipBytes(it)
		return nil
	}
	count := t.startUpload(it)
	var rc io.ReadCloser
	var h hash.Hash
	var sent int64
	var openErr error
	defer func() {
		if rc != nil {
			_ = rc.Close()
		}
	}()
	// PutAudio opens the item again when it has to send it again, slower.
	openItem := func() (io.Reader, error) {
		if rc != nil {
			_ = rc.Close()
			if count {
				t.add(-sent)
			}
		}
		var err error
		if rc, err = open(); err != nil {
			rc = nil
			openErr = fmt.Errorf("read %s: %s", it.res.Source, errText(err))
			return nil, openErr
		}
		h, sent = sha256.New(), 0
		return &meter{r: io.TeeReader(rc, h), add: func(n int64) {
			sent += n
			if count {
				t.add(n)
			}
		}}, nil
	}
	info, err := in.q.PutAudio(ctx, jetstream.ObjectMeta{Name: it.sum, Description: it.job.Source.Name}, openItem, &p.pace)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err == openErr {
			return err
		}
		return fmt.Errorf("store %s in the object store: %w", it.res.Source, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != it.sum || int64(info.Size) != it.res.Bytes {
		if err := in.q.Audio.Delete(context.WithoutCancel(ctx), it.sum); err != nil {
			in.log.Warn("could not delete an object stored under the wrong name", "object", it.sum, "err", err)
		}
		return fmt.Errorf("%s: %w", it.res.Source, errChanged)
	}
	return nil
}

// queueZip sends entries of one zip archive, reopening each.
func (p *Plan) queueZip(ctx context.Context, archive string, items []*item, t *tracker) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		for _, it := range items {
			it.res.Status, it.res.Reason = Failed, "open zip archive again: "+errText(err)
			t.settle(it)
		}
		return nil
	}
	defer func() { _ = zr.Close() }()
	for _, it := range items {
		open := func() (io.ReadCloser, error) {
			if it.index >= len(zr.File) || zr.File[it.index].Name != it.entry {
				return nil, errChanged
			}
			return zr.File[it.index].Open()
		}
		if err := p.queueItem(ctx, it, open, t); err != nil {
			return err
		}
	}
	return nil
}

// queueTar sends entries of one tar archive in a single sequential pass,
// reading only as far as the last entry needed.
func (p *Plan) queueTar(ctx context.Context, archive string, items []*item, t *tracker) error {
	slices.SortStableFunc(items, func(a, b *item) int { return a.index - b.index })
	failRest := func(reason string) {
		for _, it := range items {
			if it.res.Status == Ready {
				it.res.Status, it.res.Reason = Failed, reason
				t.settle(it)
			}
		}
	}
	tr, closeTar, err := openTar(archive)
	if err != nil {
		failRest("open tar archive again: " + errText(err))
		return nil
	}
	defer closeTar()
	next := 0
	for idx := 0; next < len(items); idx++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			failRest("entry not found when the archive was read again: " + errChanged.Error())
			return nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			failRest("read tar archive again: " + err.Error())
			return nil
		}
		for next < len(items) && items[next].index == idx {
			it := items[next]
			next++
			used := false
			open := func() (io.ReadCloser, error) {
				// The entry streams once; a second item needing the same
				// entry finds its bytes stored by the first.
				if used {
					return nil, errors.New("its upload was cut off and a tar entry can only be read once; run submit again to finish")
				}
				if hdr.Name != it.entry {
					return nil, errChanged
				}
				used = true
				return io.NopCloser(tr), nil
			}
			if err := p.queueItem(ctx, it, open, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// tracker turns work into Progress reports.
type tracker struct {
	on      func(Progress)
	p       Progress
	counted map[string]bool // sums whose bytes were counted
}

func (t *tracker) emit() {
	if t.on != nil {
		t.on(t.p)
	}
}

func (t *tracker) add(n int64) {
	t.p.Bytes += n
	if t.p.Bytes > t.p.TotalBytes {
		t.p.TotalBytes = t.p.Bytes
	}
	t.emit()
}

// startUpload reports whether this item's bytes count towards Bytes (the
// same content is counted once).
func (t *tracker) startUpload(it *item) bool {
	if t.counted[it.sum] {
		return false
	}
	t.counted[it.sum] = true
	if it.stored {
		// Counted as already stored in the plan, and gone since.
		t.p.TotalBytes += it.res.Bytes
	}
	return true
}

// skipBytes counts an item whose upload is not needed.
func (t *tracker) skipBytes(it *item) {
	if it.sum == "" || it.stored || t.counted[it.sum] {
		return
	}
	t.counted[it.sum] = true
	t.add(it.res.Bytes)
}

func (t *tracker) settle(it *item) {
	t.p.Done++
	r := it.res
	t.p.Result = &r
	t.emit()
	t.p.Result = nil
}

// meter counts bytes as they are read.
type meter struct {
	r   io.Reader
	add func(int64)
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.add(int64(n))
	}
	return n, err
}
