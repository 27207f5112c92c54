package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
)

var errReaderClosed = errors.New("reader closed")

// readAhead is how many chunks an ObjectReader fetches ahead of its reader:
// enough to keep an upload busy while the next ones arrive, few enough that
// a 10 GB file costs a couple of MiB (nats.go's ObjectStore.Get may buffer
// 64 MiB per object).
const readAhead = 16

// ObjectReader streams one object of an object store in order, fetching a
// bounded number of chunks ahead, and checks the object's digest at the end.
type ObjectReader struct {
	Info *jetstream.ObjectInfo

	bucket string
	ctx    context.Context
	js     jetstream.JetStream
	cons   jetstream.Consumer
	msgs   jetstream.MessagesContext
	cur    []byte
	chunks uint32 // chunks still to read
	read   uint64
	hashed chan []byte // chunks for the hashing goroutine
	sum    chan []byte // its digest, once hashed is closed
	done   chan struct{}
	close  sync.Once
	err    error
}

// OpenAudio opens the AUDIO object name for reading. Close it when done.
// A missing object is jetstream.ErrObjectNotFound.
func (q *Queue) OpenAudio(ctx context.Context, name string) (*ObjectReader, error) {
	return q.openObject(ctx, q.Audio, event.BucketAudio, name)
}

func (q *Queue) openObject(ctx context.Context, store jetstream.ObjectStore, bucket, name string) (*ObjectReader, error) {
	info, err := store.GetInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("queue: object %s/%s: %w", bucket, name, err)
	}
	if info.NUID == "" || (info.Opts != nil && info.Opts.Link != nil) {
		return nil, fmt.Errorf("queue: object %s/%s: not a plain object", bucket, name)
	}
	r := &ObjectReader{Info: info, bucket: bucket, ctx: ctx, js: q.JS, chunks: info.Chunks, done: make(chan struct{})}
	if info.Size == 0 || info.Chunks == 0 {
		r.err = io.EOF
		return r, nil
	}
	// Hashing takes a third of the time of uploading a 1 GiB object when it
	// runs in line with the reads; beside them it overlaps the writes.
	r.hashed, r.sum = make(chan []byte, readAhead), make(chan []byte, 1)
	go func() {
		h := sha256.New()
		for {
			select {
			case b, ok := <-r.hashed:
				if !ok {
					r.sum <- h.Sum(nil)
					return
				}
				h.Write(b)
			case <-r.done:
				return
			}
		}
	}()
	// Close deletes the consumer; the threshold only cleans up after a
	// process that died reading (streams limit how many consumers they hold).
	r.cons, err = q.JS.OrderedConsumer(ctx, "OBJ_"+bucket, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{"$O." + bucket + ".C." + info.NUID},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: read object %s/%s: %w", bucket, name, err)
	}
	if r.msgs, err = r.cons.Messages(jetstream.PullMaxMessages(readAhead)); err != nil {
		return nil, fmt.Errorf("queue: read object %s/%s: %w", bucket, name, err)
	}
	return r, nil
}

func (r *ObjectReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.chunks == 0 {
			r.err = r.finish()
			return 0, r.err
		}
		m, err := r.msgs.Next(jetstream.NextContext(r.ctx))
		if err != nil {
			r.err = fmt.Errorf("queue: read object %s/%s: %w", r.bucket, r.Info.Name, err)
			return 0, r.err
		}
		r.cur = m.Data()
		r.chunks--
		r.read += uint64(len(r.cur))
		select {
		case r.hashed <- r.cur:
		case <-r.done:
			r.err = fmt.Errorf("queue: read object %s/%s: %w", r.bucket, r.Info.Name, errReaderClosed)
			return 0, r.err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// finish checks what was read against the object's size and digest.
func (r *ObjectReader) finish() error {
	if r.read != r.Info.Size {
		return fmt.Errorf("queue: object %s/%s: read %d bytes of %d", r.bucket, r.Info.Name, r.read, r.Info.Size)
	}
	want, err := jetstream.DecodeObjectDigest(r.Info.Digest)
	if err != nil {
		return fmt.Errorf("queue: object %s/%s: %w", r.bucket, r.Info.Name, err)
	}
	close(r.hashed)
	var sum []byte
	select {
	case sum = <-r.sum:
	case <-r.done:
		return fmt.Errorf("queue: read object %s/%s: %w", r.bucket, r.Info.Name, errReaderClosed)
	}
	if !bytes.Equal(want, sum) {
		return fmt.Errorf("queue: object %s/%s: %w", r.bucket, r.Info.Name, jetstream.ErrDigestMismatch)
	}
	return io.EOF
}

// Close stops fetching, which also ends a Read waiting for a chunk, and
// deletes the consumer.
func (r *ObjectReader) Close() error {
	r.close.Do(func() { close(r.done) })
	if r.msgs == nil {
		return nil
	}
	r.msgs.Stop()
	info := r.cons.CachedInfo()
	if info == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
	defer cancel()
	if err := r.js.DeleteConsumer(ctx, "OBJ_"+r.bucket, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("queue: delete object reader %s: %w", info.Name, err)
	}
	return nil
}

// PutAudio stores the object meta.Name in AUDIO from the reader open
// returns. JetStream fsyncing every write can take chunks slower than a
// fast disk reads them; it then refuses them (a 429, or the object store's
// publisher stalls). PutAudio then calls open again and sends the object
// paced at half the rate JetStream did take, up to five tries. *pace
// carries that rate in bytes/s from one object to the next (0: unpaced).
// When ctx ends the reader fails, so the partial object is removed.
func (q *Queue) PutAudio(ctx context.Context, meta jetstream.ObjectMeta, open func() (io.Reader, error), pace *float64) (*jetstream.ObjectInfo, error) {
	for try := 1; ; try++ {
		r, err := open()
		if err != nil {
			return nil, err
		}
		pr := &pacedReader{ctx: ctx, r: r, rate: *pace, start: time.Now()}
		// The object store removes a partial upload only if its own
		// context is alive; ctx reaches Put as a read error instead.
		info, err := q.Audio.Put(context.WithoutCancel(ctx), meta, pr)
		if err == nil || !overloaded(err) || ctx.Err() != nil || try == 5 {
			return info, err
		}
		took := time.Since(pr.start).Seconds()
		*pace = max(float64(pr.n)/max(took, 0.001)/2, 1<<20)
		q.cfg.Logger.Warn("NATS is storing the upload slower than it arrives; sending it again, paced",
			"object", meta.Name, "bytes_per_sec", int64(*pace), "err", err)
	}
}

// overloaded reports whether the object store refused chunks for coming
// faster than JetStream stores them: worth sending again, slower.
func overloaded(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrTooManyStalledMsgs) ||
		(errors.As(err, &apiErr) && apiErr.Code == 429)
}

// pacedReader reads no faster than rate bytes/s (0: as fast as it can) and
// fails once ctx is done.
type pacedReader struct {
	ctx   context.Context
	r     io.Reader
	rate  float64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.rate > 0 {
		if wait := time.Until(p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-p.ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}
