package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/query"
)

// An object in a JetStream object store is a run of chunk messages on one
// subject, interleaved in the stream with other objects' chunks. The object
// store API only reads an object from the start, which makes seeking in an
// hour-long recording cost the whole file; objectFile instead indexes the
// chunks (stream sequence and size, read headers-only, so the index of a
// 1 GiB object is a few thousand small messages) and then fetches only the
// chunks a range needs, each by its sequence number. Chunk sizes are not
// assumed uniform: the object store cuts a chunk at every short read of the
// uploader's reader, so only the index knows where byte N is.

const audioStream = "OBJ_" + event.BucketAudio

// chunkIndex locates the chunks of one object.
type chunkIndex struct {
	seqs   []uint64
	starts []int64 // offset of each chunk in the object
	size   int64
}

// find returns the chunk that holds offset off (0 ≤ off < size).
func (x *chunkIndex) find(off int64) int {
	return sort.Search(len(x.starts), func(i int) bool { return x.starts[i] > off }) - 1
}

// indexCache keeps the indexes of recently played objects: a player sends
// a request per seek, and an object never changes under its NUID.
type indexCache struct {
	mu sync.Mutex
	m  map[string]*chunkIndex
}

// indexCacheSize bounds the cache; a few hundred indexes of hour-long
// files take a few MiB.
const indexCacheSize = 256

func (c *indexCache) get(nuid string) *chunkIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[nuid]
}

func (c *indexCache) put(nuid string, x *chunkIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= indexCacheSize {
		// Dropping everything is crude but bounded, and rebuilding an index
		// costs one headers-only read.
		c.m = make(map[string]*chunkIndex)
	}
	c.m[nuid] = x
}

// buildIndex reads the headers of every chunk of info's object.
func buildIndex(ctx context.Context, js jetstream.JetStream, info *jetstream.ObjectInfo) (*chunkIndex, error) {
	x := &chunkIndex{size: int64(info.Size)}
	if info.Chunks == 0 {
		return x, nil
	}
	subject := "$O." + event.BucketAudio + ".C." + info.NUID
	cons, err := js.OrderedConsumer(ctx, audioStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       true,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("web: index audio %s: %w", info.Name, err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, fmt.Errorf("web: index audio %s: %w", info.Name, err)
	}
	defer func() {
		msgs.Stop()
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = js.DeleteConsumer(dctx, audioStream, ci.Name)
		}
	}()
	x.seqs = make([]uint64, 0, info.Chunks)
	x.starts = make([]int64, 0, info.Chunks)
	var off int64
	for range info.Chunks {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("web: index audio %s: %w", info.Name, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("web: index audio %s: %w", info.Name, err)
		}
		size, err := strconv.ParseInt(m.Headers().Get(nats.MsgSize), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("web: index audio %s: chunk %d has no size header", info.Name, md.Sequence.Stream)
		}
		x.seqs = append(x.seqs, md.Sequence.Stream)
		x.starts = append(x.starts, off)
		off += size
	}
	if off != x.size {
		return nil, fmt.Errorf("web: index audio %s: chunks hold %d bytes, the object %d", info.Name, off, x.size)
	}
	return x, nil
}

// objectFile is an io.ReadSeeker over one object, for http.ServeContent.
type objectFile struct {
	ctx     context.Context
	stream  jetstream.Stream
	subject string
	name    string
	x       *chunkIndex
	pos     int64
	cur     []byte // the rest of the chunk being read; valid at pos
}

func (f *objectFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.x.size
	default:
		return f.pos, errors.New("web: seek: bad whence")
	}
	if offset < 0 {
		return f.pos, errors.New("web: seek before the start")
	}
	if offset != f.pos {
		f.pos, f.cur = offset, nil
	}
	return f.pos, nil
}

func (f *objectFile) Read(p []byte) (int, error) {
	if f.pos >= f.x.size {
		return 0, io.EOF
	}
	if len(f.cur) == 0 {
		k := f.x.find(f.pos)
		m, err := f.stream.GetMsg(f.ctx, f.x.seqs[k])
		if err != nil {
			return 0, fmt.Errorf("web: read audio %s: %w", f.name, err)
		}
		want := f.x.size - f.x.starts[k]
		if k+1 < len(f.x.starts) {
			want = f.x.starts[k+1] - f.x.starts[k]
		}
		if m.Subject != f.subject || int64(len(m.Data)) != want {
			return 0, fmt.Errorf("web: read audio %s: chunk %d is not what the index says", f.name, f.x.seqs[k])
		}
		f.cur = m.Data[f.pos-f.x.starts[k]:]
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	f.pos += int64(n)
	return n, nil
}

// audioTypes are the Content-Types of the formats intake recognises that
// a browser may play; others are left to http.ServeContent's sniffing.
var audioTypes = map[string]string{
	"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
	"m4a": "audio/mp4", "mp4": "video/mp4", "webm": "audio/webm", "aac": "audio/aac", "aiff": "audio/aiff",
}

// audio serves a job's original audio with range support.
func (s *Server) audio(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Queue == nil {
		s.fail(w, r, http.StatusNotFound, "This console has no NATS connection, so it cannot play audio.")
		return
	}
	id := r.PathValue("id")
	j, err := s.db.Show(r.Context(), id, false)
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "There is no job "+id+".")
		return
	}
	if err != nil {
		s.internal(w, r, "reading the job", err)
		return
	}
	var src event.Source
	_ = json.Unmarshal(j.Source, &src)
	if src.Object == "" {
		s.fail(w, r, http.StatusNotFound, "This job's audio was sent as a URL; scribeq never stored it.")
		return
	}
	f, info, err := s.openAudio(r.Context(), src.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		s.fail(w, r, http.StatusNotFound, "The audio is no longer in the object store.")
		return
	}
	if err != nil {
		s.internal(w, r, "reading the audio", err)
		return
	}
	h := w.Header()
	if ct, ok := audioTypes[src.Format]; ok {
		h.Set("Content-Type", ct)
	}
	// The object is named by its sha256, so its name is a strong ETag and
	// it never changes: a browser may keep it.
	h.Set("ETag", `"`+info.Name+`"`)
	h.Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", info.ModTime, f)
}

// openAudio returns a reader over AUDIO object name and its info.
func (s *Server) openAudio(ctx context.Context, name string) (*objectFile, *jetstream.ObjectInfo, error) {
	q := s.cfg.Queue
	info, err := q.Audio.GetInfo(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("web: audio %s: %w", name, err)
	}
	if info.NUID == "" || (info.Opts != nil && info.Opts.Link != nil) {
		return nil, nil, fmt.Errorf("web: audio %s: not a plain object", name)
	}
	x := s.indexes.get(info.NUID)
	if x == nil {
		if x, err = buildIndex(ctx, q.JS, info); err != nil {
			return nil, nil, err
		}
		s.indexes.put(info.NUID, x)
	}
	st, err := s.audioStream(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &objectFile{ctx: ctx, stream: st, subject: "$O." + event.BucketAudio + ".C." + info.NUID, name: name, x: x}, info, nil
}

func (s *Server) audioStream(ctx context.Context) (jetstream.Stream, error) {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	st, err := s.cfg.Queue.JS.Stream(ctx, audioStream)
	if err != nil {
		return nil, fmt.Errorf("web: audio stream: %w", err)
	}
	s.stream = st
	return st, nil
}
