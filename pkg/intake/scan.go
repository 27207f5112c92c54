package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
)

type itemKind int

const (
	kindNone itemKind = iota // nothing to read: a bad row, a missing file
	kindFile
	kindURL
	kindZip
	kindTar
)

// item is one thing that may become a job, with what Queue needs to find
// its bytes again.
type item struct {
	res   Result
	kind  itemKind
	path  string // the file, or the archive holding the entry
	entry string // entry name inside the archive
	index int    // entry position inside the archive (zip file index, tar header number)
	url   string
	opts  event.Options
	meta  map[string]string

	sum    string     // sha256 of the content, hex
	job    *event.Job // Ready and AlreadySubmitted items
	key    string     // job id without Force: what makes two items the same job
	stored bool       // the object was already in AUDIO at scan time
	// claimedHere: this submit made the item's INTAKE claim (so a retry
	// that finds it is not finishing someone else's interrupted submit).
	claimedHere bool
}

type scanner struct {
	in        *Intake
	req       Request
	plan      *Plan
	onItem    func(Result)
	items     []*item
	byKey     map[string]*item
	seen      map[string]bool
	stdinRead bool
	buf       []byte
}

// Plan is the outcome of Scan: every item classified, and totals for the
// estimate. Queue sends it.
type Plan struct {
	// BatchID is fresh for every Scan; BatchName is Request.Batch or its default.
	BatchID, BatchName string
	// Results has one entry per item, in the order the sources named them;
	// the items Queue will send have Status Ready.
	Results []Result
	Totals  Totals

	in    *Intake
	items []*item
	mu    sync.Mutex
	used  bool
	// pace is the upload rate in bytes/s once NATS has shown it cannot
	// store faster; 0 sends as fast as the source reads.
	pace float64
}

// Totals sum up a Plan.
type Totals struct {
	// Items is how many jobs Queue will publish (Ready items).
	Items int `json:"items"`
	// Bytes of those items' content.
	Bytes int64 `json:"bytes"`
	// UploadBytes is how much of that is not in the object store yet (the
	// same content is counted once): what Queue uploads.
	UploadBytes int64 `json:"upload_bytes"`
	// AudioSecs is the known duration of those items.
	AudioSecs float64 `json:"audio_secs"`
	// UnknownDuration counts those items whose duration could not be read
	// (URLs, formats the prober does not know); Cost leaves them out.
	UnknownDuration int `json:"unknown_duration"`
	// Cost is the estimated price of those items with a known duration.
	Cost     float64 `json:"cost"`
	Currency string  `json:"currency"`
	// PerHour is the price the estimate used.
	PerHour float64 `json:"per_hour"`
	// Counts has every item by status.
	Counts map[Status]int `json:"counts"`
}

// Scan enumerates every source and reads every item once (sha256, format,
// duration and size in one streaming pass), then classifies it: Ready to
// send, or Skipped, Failed, Repeated (same bytes and options as an earlier
// item of this call) or AlreadySubmitted. onItem, if set, is called as each
// item is classified. Nothing is stored or published. The error is only for
// what stops the whole call: bad options or patterns, NATS unreachable, ctx
// done.
func (in *Intake) Scan(ctx context.Context, req Request, onItem func(Result)) (*Plan, error) {
	if len(req.Sources) == 0 {
		return nil, errors.New("intake: nothing to submit: no sources")
	}
	opts := req.Options
	if err := Validate(&opts); err != nil {
		return nil, err
	}
	if err := validPatterns("--include", req.Include); err != nil {
		return nil, err
	}
	if err := validPatterns("--exclude", req.Exclude); err != nil {
		return nil, err
	}
	plan := &Plan{BatchID: newBatchID(), BatchName: req.Batch, in: in}
	if plan.BatchName == "" {
		plan.BatchName = defaultBatchName(req.Sources[0], time.Now())
	}
	s := &scanner{
		in: in, req: req, plan: plan, onItem: onItem,
		byKey: map[string]*item{}, seen: map[string]bool{},
		buf: make([]byte, 64<<10),
	}
	base := origin{opts: opts, meta: req.Metadata}
	for _, src := range req.Sources {
		if err := s.top(ctx, src, base); err != nil {
			return nil, err
		}
	}
	plan.items = s.items
	plan.Results = make([]Result, len(s.items))
	for i, it := range s.items {
		plan.Results[i] = it.res
	}
	plan.Totals = in.totals(s.items)
	return plan, nil
}

func (in *Intake) totals(items []*item) Totals {
	t := Totals{Currency: in.cfg.Pricing.Currency, PerHour: in.cfg.Pricing.PerHour, Counts: map[Status]int{}}
	upload := map[string]bool{}
	for _, it := range items {
		t.Counts[it.res.Status]++
		if it.res.Status != Ready {
			continue
		}
		t.Items++
		t.Bytes += it.res.Bytes
		if it.res.DurationSecs > 0 {
			t.AudioSecs += it.res.DurationSecs
			t.Cost += it.res.Cost
		} else {
			t.UnknownDuration++
		}
		if it.sum != "" && !it.stored && !upload[it.sum] {
			upload[it.sum] = true
			t.UploadBytes += it.res.Bytes
		}
	}
	return t
}

func (s *scanner) newItem(k itemKind, source string, o origin) *item {
	return &item{kind: k, res: Result{Source: source, From: o.from}, opts: o.opts, meta: o.meta}
}

func (s *scanner) report(it *item) {
	s.items = append(s.items, it)
	if s.onItem != nil {
		s.onItem(it.res)
	}
}

// fail reports something that could not be read or understood.
func (s *scanner) fail(o origin, source, reason string) {
	it := s.newItem(kindNone, source, o)
	it.res.Status, it.res.Reason = Failed, reason
	s.report(it)
}

// skip reports something deliberately not sent.
func (s *scanner) skip(o origin, source, reason string) {
	it := s.newItem(kindNone, source, o)
	it.res.Status, it.res.Reason = Skipped, reason
	s.report(it)
}

// precheck settles an item from its size alone (empty, too large) before
// anything is read; it reports whether it did.
func (s *scanner) precheck(it *item, size int64) bool {
	it.res.Bytes = size
	if size == 0 {
		it.res.Status, it.res.Reason = Skipped, "empty file"
	} else if reason := s.in.cfg.Limits.check(size, audio.Info{}, it.opts); reason != "" {
		it.res.Status, it.res.Reason = Skipped, reason
	} else {
		return false
	}
	s.report(it)
	return true
}

// read streams an item's bytes once through sha256, the prober and a
// sniffer, then settles it.
func (s *scanner) read(ctx context.Context, it *item, r io.Reader) error {
	name := it.res.Source
	if it.entry != "" {
		name = it.entry
	}
	h := sha256.New()
	p := audio.NewProber(name)
	var head headWriter
	n, err := io.CopyBuffer(io.MultiWriter(h, p, &head), ctxReader{ctx, r}, s.buf)
	info := p.Info() // always: it ends the prober's work
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		it.res.Status, it.res.Reason = Failed, "read: "+errText(err)
		s.report(it)
		return nil
	}
	return s.settle(ctx, it, &digest{sum: hex.EncodeToString(h.Sum(nil)), size: n, info: info, head: head.b})
}

type digest struct {
	sum  string
	size int64
	info audio.Info
	head []byte
}

// settle classifies a read item (d nil for a URL) and reports it.
func (s *scanner) settle(ctx context.Context, it *item, d *digest) (err error) {
	defer func() {
		if err == nil {
			s.report(it)
		}
	}()
	var key string
	if d != nil {
		it.res.Bytes = d.size
		if d.size == 0 {
			it.res.Status, it.res.Reason = Skipped, "empty file"
			return nil
		}
		info := d.info
		if info.Kind == audio.Unknown {
			info.Kind, info.Format = sniffMedia(d.head)
		}
		if info.Kind == audio.Unknown {
			it.res.Status, it.res.Reason = Skipped, "not audio or video ("+looksLike(d.head)+")"
			return nil
		}
		it.res.Format, it.res.DurationSecs, it.res.Channels = info.Format, info.Duration, info.Channels
		if reason := s.in.cfg.Limits.check(d.size, info, it.opts); reason != "" {
			it.res.Status, it.res.Reason = Skipped, reason
			return nil
		}
		it.sum = d.sum
		key = "sha256:" + d.sum
	} else {
		key = "url:" + it.url
	}

	it.key = JobID(key, it.opts, false)
	if first, ok := s.byKey[it.key]; ok {
		it.res.Status, it.res.JobID, it.res.DuplicateOf = Repeated, first.res.JobID, first.res.Source
		it.res.Reason = "same content and options as " + first.res.Where()
		return nil
	}
	s.byKey[it.key] = it
	it.res.JobID = it.key
	if s.req.Force {
		it.res.JobID = JobID(key, it.opts, true)
	}
	it.job = s.job(it)
	it.res.Cost = s.in.cfg.Pricing.Cost(it.res.DurationSecs, it.opts, it.res.Channels)

	if !s.req.Force {
		rec, err := s.in.record(ctx, it.key)
		if err != nil {
			return err
		}
		switch {
		case rec.queued:
			it.res.Status, it.res.Reason, it.res.Cost = AlreadySubmitted, "already submitted with the same options (use --force to queue it again)", 0
			return nil
		case rec.found:
			it.res.Reason = "finishing an interrupted submit"
		}
	}
	if it.sum != "" {
		stored, err := s.in.stored(ctx, it.sum, it.res.Bytes)
		if err != nil {
			return err
		}
		it.stored = stored
	}
	it.res.Status = Ready
	return nil
}

// job builds the job an item becomes.
func (s *scanner) job(it *item) *event.Job {
	j := &event.Job{
		V: event.Version, JobID: it.res.JobID, BatchID: s.plan.BatchID, BatchName: s.plan.BatchName,
		Options: it.opts, Metadata: it.meta,
		Pricing: s.in.cfg.Pricing.job(it.opts, it.res.Channels),
	}
	src := &j.Source
	switch it.kind {
	case kindURL:
		src.URL = it.url
	case kindFile:
		src.Object, src.Path, src.Name = it.sum, absPath(it.path), filepath.Base(it.path)
	case kindZip, kindTar:
		src.Archive, src.Entry = absPath(it.path), cleanEntry(it.entry)
		src.Object, src.Path, src.Name = it.sum, src.Archive+"!"+src.Entry, path.Base(src.Entry)
	}
	if it.sum != "" {
		src.Size, src.DurationSecs, src.Format = it.res.Bytes, it.res.DurationSecs, it.res.Format
	}
	return j
}

// stored reports whether AUDIO already holds these bytes.
func (in *Intake) stored(ctx context.Context, sum string, size int64) (bool, error) {
	info, err := in.q.Audio.GetInfo(ctx, sum)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("intake: look up audio %s: %w", sum, err)
	}
	return int64(info.Size) == size && digestIs(info.Digest, sum), nil
}

// defaultBatchName is the first source's name and today's date.
func defaultBatchName(src string, now time.Time) string {
	name := src
	switch {
	case src == "-":
		name = "stdin"
	case strings.Contains(src, "://"):
		if u, err := url.Parse(src); err == nil && u.Host != "" {
			name = u.Host
			if b := path.Base(u.Path); b != "." && b != "/" {
				name += "/" + b
			}
		}
	default:
		name = filepath.Base(absPath(src))
	}
	return name + " " + now.Format("2006-01-02")
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// headWriter keeps the first bytes for sniffing.
type headWriter struct{ b []byte }

const sniffLen = 512

func (h *headWriter) Write(p []byte) (int, error) {
	if n := sniffLen - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}
