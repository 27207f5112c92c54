package audio

import (
	"math"
	"path/filepath"
	"strings"
)

// Kind says whether content is audio, video, or neither.
type Kind int

const (
	Unknown Kind = iota // not recognised as media
	Audio
	Video
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Video:
		return "video"
	}
	return "unknown"
}

// Info is what a Prober learned about a file.
type Info struct {
	Kind Kind
	// Format is a short name: wav, mp3, flac, ogg, opus, m4a, mp4, webm, …
	Format string
	// Duration in seconds; 0 when it could not be read.
	Duration float64
	// Channels; 0 when unknown.
	Channels int
}

// Prober learns a file's kind, format and duration from its bytes as they
// stream past (fed through io.MultiWriter while the file is hashed), so a
// file is read once. It never seeks and keeps at most bufCap bytes of the
// stream, whatever the file's size: each format's parser asks for the few
// bytes it needs (a header, a box, a page header) and skips the rest
// unseen, without copying it.
//
// Duration is only reported when the file says it (a header field, a
// granule position, a sample count) or when every frame was counted as it
// went by; it is never estimated from the size and a bit rate.
type Prober struct {
	ext string // lowercase extension of the name: only a hint

	p       parser
	buf     []byte // bytes the parser has not consumed yet (at most bufCap)
	skip    int64  // bytes to drop before the parser sees more
	pos     int64  // stream offset of the next byte the parser will see
	total   int64  // bytes written so far
	stopped bool   // the parser has all it wants: drop everything else
	done    bool
	info    Info
}

// parser is one format's push parser. step is given the unconsumed bytes,
// which start at stream offset Prober.pos, and returns how far to advance:
// more than len(b) skips the excess unseen; needMore asks for more bytes
// (a parser never needs more than bufCap at once). eof says no more bytes
// will come. Returning 0 is only allowed after switching Prober.p to
// another parser or calling stop. finish reports what was learned.
type parser interface {
	step(b []byte, eof bool) int64
	finish() Info
}

const (
	// bufCap bounds what a Prober holds; every parser's largest request
	// (the sniff window) fits well inside it.
	bufCap = 64 << 10
	// sniffLen is how much of the start the sniffer looks at: enough for
	// two of the largest MPEG audio or ADTS frames and four TS packets.
	sniffLen = 20 << 10
	// topUp is how much is added to a waiting buffer at a time.
	topUp    = 4 << 10
	needMore = int64(-1)
	// toEnd skips the rest of the stream.
	toEnd = int64(math.MaxInt64)
)

// NewProber returns a Prober for a file called name (the extension is a
// hint, never trusted over the content).
func NewProber(name string) *Prober {
	pr := &Prober{ext: strings.ToLower(filepath.Ext(name))}
	pr.p = &sniffer{pr: pr}
	return pr
}

// Write never fails: a Prober that cannot make sense of the bytes reports
// Unknown.
func (p *Prober) Write(b []byte) (int, error) {
	n := len(b)
	if p.done {
		return n, nil
	}
	p.total += int64(n)
	for len(b) > 0 {
		if p.skip > 0 {
			d := min(p.skip, int64(len(b)))
			b = b[d:]
			p.skip -= d
			p.pos += d
			continue
		}
		if len(p.buf) == 0 {
			// Parse straight from the caller's slice; keep only a tail the
			// parser could not use yet.
			k := p.run(b, false)
			b = b[k:]
			if len(b) == 0 || p.skip > 0 {
				continue
			}
			if len(b) >= bufCap {
				p.stop() // the parser wants more than it may hold: a bug, so give up quietly
				continue
			}
			p.buf = append(p.buf, b...)
			return n, nil
		}
		// Top up in small steps: once the parser has what it wanted, the
		// rest of b is parsed in place rather than copied.
		take := min(len(b), bufCap-len(p.buf), topUp)
		p.buf = append(p.buf, b[:take]...)
		b = b[take:]
		k := p.run(p.buf, false)
		p.buf = p.buf[:copy(p.buf, p.buf[k:])]
		if len(p.buf) == bufCap {
			p.stop()
		}
	}
	return n, nil
}

// Info returns what was learned; call it once, after the last Write.
func (p *Prober) Info() Info {
	if !p.done {
		if p.skip == 0 {
			p.run(p.buf, true)
		}
		p.buf = nil
		p.done = true
		p.info = sane(p.p.finish())
	}
	return p.info
}

// sane keeps a hostile header's nonsense out of what callers see.
func sane(in Info) Info {
	if in.Kind == Unknown {
		return Info{}
	}
	if in.Channels < 0 || in.Channels > 255 {
		in.Channels = 0
	}
	if !(in.Duration > 0 && in.Duration < 1e9) { // also NaN
		in.Duration = 0
	}
	return in
}

// run steps the parser over b until it needs more, and returns how many
// bytes of b it consumed; an advance beyond b becomes p.skip.
func (p *Prober) run(b []byte, eof bool) int {
	off := 0
	for !p.stopped && (off < len(b) || eof) {
		cur := p.p
		n := cur.step(b[off:], eof)
		switch {
		case n == needMore:
			if p.p != cur && !p.stopped {
				continue // a new parser takes over at the same offset
			}
			return off
		case n < 0, n == 0 && p.p == cur && !p.stopped:
			p.stop() // no progress: never spin
			return off
		}
		if rest := int64(len(b) - off); n > rest {
			p.pos += rest
			p.skip = n - rest
			return len(b)
		}
		off += int(n)
		p.pos += n
	}
	return off
}

// stop ends parsing: the rest of the stream is dropped unseen.
func (p *Prober) stop() {
	p.stopped = true
	p.skip = toEnd
}

// adv turns an unsigned size from a file into an advance, saturating so a
// hostile size cannot overflow.
func adv(base int64, size uint64) int64 {
	if size > uint64(math.MaxInt64/4) {
		return toEnd
	}
	return base + int64(size)
}

// sniffer looks at the start of the stream and hands over to the parser
// of the format it recognises. An ID3v2 tag is skipped first (MP3, AAC and
// even FLAC files carry them) and the sniff starts again after it.
type sniffer struct {
	pr     *Prober
	hadID3 bool
}

func (s *sniffer) finish() Info { return Info{} }

func (s *sniffer) step(b []byte, eof bool) int64 {
	if len(b) < sniffLen && !eof {
		return needMore
	}
	if n, ok := id3Size(b); ok {
		s.hadID3 = true
		return n
	}
	// Look at the same window whatever the write sizes, so the verdict
	// never depends on how the stream was cut.
	win := b[:min(len(b), sniffLen)]
	if p := s.detect(win, eof && len(b) <= sniffLen); p != nil {
		s.pr.p = p
		return needMore
	}
	s.pr.stop()
	return 0
}

func (s *sniffer) detect(b []byte, eof bool) parser {
	pr := s.pr
	has := func(off int, magic string) bool {
		return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "RIFF") || has(0, "RF64") || has(0, "BW64"):
		if has(8, "WAVE") {
			return &wavParser{pr: pr}
		}
		if has(8, "AVI ") {
			return &fixedParser{pr: pr, info: Info{Kind: Video, Format: "avi"}}
		}
	case has(0, "FORM") && (has(8, "AIFF") || has(8, "AIFC")):
		return &aiffParser{pr: pr}
	case has(0, "caff"):
		return &cafParser{pr: pr}
	case has(0, ".snd"):
		return &auParser{pr: pr}
	case has(0, "fLaC"):
		return &flacParser{pr: pr}
	case has(0, "OggS"):
		return newOggParser(pr)
	case has(0, "\x1a\x45\xdf\xa3"):
		return &ebmlParser{pr: pr, timecodeScale: 1e6}
	case has(0, asfHeaderGUID):
		return &asfParser{pr: pr}
	case has(0, "#!AMR\n"), has(0, "#!AMR-WB\n"):
		return newAMRParser(pr, has(0, "#!AMR-WB\n"))
	case has(0, "FLV\x01") && len(b) >= 9:
		return newFLVParser(pr, b[4])
	case has(0, "\x00\x00\x01\xba"), has(0, "\x00\x00\x01\xb3"):
		return &fixedParser{pr: pr, info: Info{Kind: Video, Format: "mpeg"}}
	case has(4, "ftyp"):
		return &mp4Parser{pr: pr}
	case isQuickTimeStart(b, pr.ext):
		return &mp4Parser{pr: pr}
	}
	if stride, off, ok := tsPackets(b); ok {
		return &tsParser{pr: pr, stride: stride, off: off}
	}
	if p := detectFrames(pr, b, eof, s.hadID3); p != nil {
		return p
	}
	return nil
}

// fixedParser is for formats recognised by their magic alone.
type fixedParser struct {
	pr   *Prober
	info Info
}

func (f *fixedParser) step([]byte, bool) int64 { f.pr.stop(); return 0 }
func (f *fixedParser) finish() Info            { return f.info }

// id3Size returns the size of an ID3v2 tag at the start of b.
func id3Size(b []byte) (int64, bool) {
	if len(b) < 10 || string(b[0:3]) != "ID3" || b[3] == 0xff || b[4] == 0xff {
		return 0, false
	}
	var n int64
	for _, c := range b[6:10] {
		if c&0x80 != 0 {
			return 0, false // sizes are sync-safe: seven bits a byte
		}
		n = n<<7 | int64(c)
	}
	n += 10
	if b[5]&0x10 != 0 {
		n += 10 // footer
	}
	return n, true
}
