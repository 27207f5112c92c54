package audio

import "bytes"

// ISO base media (MP4, M4A, 3GP) and QuickTime. Only the boxes on the path
// to what matters are entered: moov/mvhd for the duration, and per track
// mdia/hdlr (audio or video), mdia/mdhd and stbl/stsd (channels). Sample
// tables (tens of MB in a long file's moov) and mdat are skipped unseen,
// so it does not matter whether moov comes first or last. A fragmented
// file (mvex in moov, as Safari's MediaRecorder and DASH write) has no
// duration in moov: its moof/traf/trun sample durations are added up as
// they stream past.

type mp4Box struct {
	typ string
	end int64 // -1: to the end of the file
}

type mp4Track struct {
	id        uint32
	handler   string
	timescale uint32
	duration  uint64
	channels  int
}

type mp4Parser struct {
	pr    *Prober
	stack []mp4Box
	brand string

	haveMvhd  bool
	timescale uint32
	duration  uint64
	fragDur   uint64 // mvex/mehd, for fragmented files

	trk      mp4Track
	inTrak   bool
	anyVideo bool
	anyAudio bool
	audio    *mp4Track // first audio track
	first    *mp4Track // first track of any kind

	// Fragmented files.
	fragmented bool
	trexDur    map[uint32]uint32 // default sample duration by track
	tfTrack    uint32            // track of the current traf
	tfDefault  uint32            // its default sample duration
	trunLeft   int64             // trun entries still to add up
	trunStride int64             // bytes per trun entry
	trunEnd    int64             // where the trun being read ends
	sum        uint64            // sample durations of the timed track
}

// mp4Containers says which boxes are entered, by parent.
var mp4Containers = map[string]string{
	"moov": "", "trak": "moov", "mvex": "moov",
	"mdia": "trak", "minf": "mdia", "stbl": "minf",
	"moof": "", "traf": "moof",
}

func (m *mp4Parser) step(b []byte, eof bool) int64 {
	if m.trunLeft > 0 {
		return m.addTrun(b, eof)
	}
	if m.trunEnd > m.pr.pos {
		n := m.trunEnd - m.pr.pos
		m.trunEnd = 0
		return n
	}
	for len(m.stack) > 0 {
		top := m.stack[len(m.stack)-1]
		if top.end < 0 || m.pr.pos < top.end {
			break
		}
		m.leave()
		if m.pr.stopped {
			return 0
		}
	}
	if need(m.pr, b, 8, eof) {
		return needMore
	}
	size := uint64(be32(b[0:4]))
	typ := string(b[4:8])
	hdr := 8
	if size == 1 {
		if need(m.pr, b, 16, eof) {
			return needMore
		}
		size, hdr = be64(b[8:16]), 16
	}
	parent, parentEnd := "", int64(-1)
	if len(m.stack) > 0 {
		parent, parentEnd = m.stack[len(m.stack)-1].typ, m.stack[len(m.stack)-1].end
	}
	end := parentEnd // size 0: to the end of the parent (or file)
	if size != 0 {
		if size < uint64(hdr) {
			m.pr.stop() // not a box: the file is damaged here
			return 0
		}
		if a := adv(m.pr.pos, size); a != toEnd {
			end = a
		}
		if parentEnd >= 0 && (end < 0 || end > parentEnd) {
			end = parentEnd
		}
	}
	rest := toEnd
	if end >= 0 {
		rest = end - m.pr.pos
	}
	if p, ok := mp4Containers[typ]; ok && p == parent {
		m.stack = append(m.stack, mp4Box{typ: typ, end: end})
		switch typ {
		case "trak":
			m.trk, m.inTrak = mp4Track{}, true
		case "mvex":
			m.fragmented = true
		case "traf":
			m.tfTrack, m.tfDefault = 0, 0
		}
		return int64(hdr)
	}
	body := func(n int) ([]byte, bool) {
		if rest < int64(hdr+n) {
			return nil, false // box too small to hold the field
		}
		if len(b) < hdr+n {
			return nil, true
		}
		return b[hdr : hdr+n], true
	}
	var want int
	switch parent + "/" + typ {
	case "/ftyp":
		want = 4
	case "moov/mvhd", "mdia/mdhd":
		want = 20
		if len(b) > hdr && b[hdr] == 1 {
			want = 32
		}
	case "mdia/hdlr":
		want = 12
	case "mvex/mehd":
		want = 8
		if len(b) > hdr && b[hdr] == 1 {
			want = 12
		}
	case "stbl/stsd":
		// The sample entry and, for AAC, its esds with the real channel
		// count (an MP4 sample entry always says 2).
		want = int(min(rest-int64(hdr), 256))
		if want < 34 {
			return rest
		}
	case "trak/tkhd":
		want = 16
		if len(b) > hdr && b[hdr] == 1 {
			want = 24
		}
	case "mvex/trex":
		want = 16
	case "traf/tfhd":
		want = 8
		if len(b) >= hdr+4 {
			fl := b[hdr+3]
			want += 8*int(fl&1) + 4*int(fl>>1&1) + 4*int(fl>>3&1)
		} else if !eof {
			return needMore
		}
	case "traf/trun":
		if !m.fragmented || m.sumTrack() == nil || m.tfTrack != m.sumTrack().id {
			return rest
		}
		want = 8
		if len(b) >= hdr+4 {
			fl := b[hdr+3]
			want += 4*int(fl&1) + 4*int(fl>>2&1)
		} else if !eof {
			return needMore
		}
	default:
		return rest
	}
	if len(b) <= hdr && !eof {
		return needMore // the version byte decides the size wanted
	}
	v, ok := body(want)
	switch {
	case !ok:
		return rest
	case v == nil:
		if eof {
			m.pr.stop()
		}
		return needMore
	}
	if typ == "trun" {
		return m.startTrun(v, rest, hdr)
	}
	m.parseLeaf(parent+"/"+typ, v)
	return rest
}

// startTrun adds up a track run: count times the default duration, or,
// when each sample has its own, the entries as they stream past.
func (m *mp4Parser) startTrun(v []byte, rest int64, hdr int) int64 {
	flags := uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	count := int64(be32(v[4:8]))
	if flags&0x100 == 0 {
		d := m.tfDefault
		if d == 0 {
			d = m.trexDur[m.tfTrack]
		}
		m.sum += uint64(count) * uint64(d)
		return rest
	}
	stride := int64(0)
	for bit := uint32(0x100); bit <= 0x800; bit <<= 1 {
		if flags&bit != 0 {
			stride += 4
		}
	}
	used := int64(hdr + len(v))
	if rest != toEnd {
		count = min(count, (rest-used)/stride)
		m.trunEnd = m.pr.pos + rest
	}
	m.trunLeft, m.trunStride = count, stride
	return used
}

// addTrun adds the durations of the whole trun entries in b.
func (m *mp4Parser) addTrun(b []byte, eof bool) int64 {
	n := min(int64(len(b))/m.trunStride, m.trunLeft)
	if n == 0 {
		if eof {
			m.pr.stop()
		}
		return needMore
	}
	for i := range n {
		m.sum += uint64(be32(b[i*m.trunStride:]))
	}
	m.trunLeft -= n
	return n * m.trunStride
}

// sumTrack is the track whose fragments give the duration: the first
// audio track, else the first track.
func (m *mp4Parser) sumTrack() *mp4Track {
	if m.audio != nil {
		return m.audio
	}
	return m.first
}

func (m *mp4Parser) parseLeaf(path string, v []byte) {
	switch path {
	case "/ftyp":
		m.brand = string(v[0:4])
	case "moov/mvhd":
		m.haveMvhd = true
		m.timescale, m.duration = timeAndDuration(v)
	case "mdia/mdhd":
		m.trk.timescale, m.trk.duration = timeAndDuration(v)
	case "mdia/hdlr":
		m.trk.handler = string(v[8:12])
	case "mvex/mehd":
		if v[0] == 1 {
			m.fragDur = be64(v[4:12])
		} else {
			m.fragDur = uint64(be32(v[4:8]))
		}
	case "stbl/stsd":
		if m.trk.handler == "soun" && be32(v[4:8]) > 0 {
			m.trk.channels = int(be16(v[32:34]))
			if i := bytes.Index(v, []byte("esds")); i >= 0 {
				if ch := esdsChannels(v[i+4:]); ch > 0 {
					m.trk.channels = ch
				}
			}
		}
	case "trak/tkhd":
		if v[0] == 1 {
			m.trk.id = be32(v[20:24])
		} else {
			m.trk.id = be32(v[12:16])
		}
	case "mvex/trex":
		if m.trexDur == nil {
			m.trexDur = map[uint32]uint32{}
		}
		if len(m.trexDur) < 64 {
			m.trexDur[be32(v[4:8])] = be32(v[12:16])
		}
	case "traf/tfhd":
		m.tfTrack = be32(v[4:8])
		if v[3]&0x08 != 0 {
			m.tfDefault = be32(v[len(v)-4:])
		}
	}
}

// timeAndDuration reads an mvhd or mdhd body (version 0 or 1).
func timeAndDuration(v []byte) (uint32, uint64) {
	if v[0] == 1 {
		d := be64(v[24:32])
		if d == ^uint64(0) {
			d = 0
		}
		return be32(v[20:24]), d
	}
	d := uint64(be32(v[16:20]))
	if d == 0xFFFFFFFF {
		d = 0
	}
	return be32(v[12:16]), d
}

func (m *mp4Parser) leave() {
	top := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	switch top.typ {
	case "trak":
		m.endTrak()
	case "moov":
		if !m.fragmented {
			m.pr.stop() // everything wanted lives in moov
		}
	}
}

func (m *mp4Parser) endTrak() {
	if !m.inTrak {
		return
	}
	m.inTrak = false
	switch m.trk.handler {
	case "vide":
		m.anyVideo = true
	case "soun":
		m.anyAudio = true
		if m.audio == nil {
			t := m.trk
			m.audio = &t
		}
	}
	if m.first == nil {
		t := m.trk
		m.first = &t
	}
}

func (m *mp4Parser) finish() Info {
	m.endTrak() // a file cut inside a track still tells its handler
	in := Info{Kind: Video}
	switch {
	case m.anyVideo:
	case m.anyAudio:
		in.Kind = Audio
	case m.brand == "M4A " || m.brand == "M4B " || m.brand == "M4P " ||
		m.pr.ext == ".m4a" || m.pr.ext == ".m4b":
		in.Kind = Audio // no track seen (cut short): trust the brand or name
	}
	switch {
	case in.Kind == Audio:
		in.Format = "m4a"
	case m.brand == "qt  " || m.brand == "":
		in.Format = "mov"
	case m.brand[:2] == "3g":
		in.Format = "3gp"
	default:
		in.Format = "mp4"
	}
	if m.audio != nil {
		in.Channels = m.audio.channels
	}
	switch {
	case m.haveMvhd && m.duration > 0:
		in.Duration = seconds(float64(m.duration), float64(m.timescale))
	case m.audio != nil && m.audio.duration > 0:
		in.Duration = seconds(float64(m.audio.duration), float64(m.audio.timescale))
	case m.sum > 0 && m.sumTrack() != nil:
		in.Duration = seconds(float64(m.sum), float64(m.sumTrack().timescale))
	case m.fragDur > 0:
		in.Duration = seconds(float64(m.fragDur), float64(m.timescale))
	}
	return in
}

// isQuickTimeStart recognises an old QuickTime file that starts without
// ftyp. Those box names are too common to trust alone, so the name must
// agree.
func isQuickTimeStart(b []byte, ext string) bool {
	switch ext {
	case ".mov", ".qt", ".mp4", ".m4a", ".m4v", ".3gp":
	default:
		return false
	}
	if len(b) < 8 || be32(b[0:4]) < 8 && be32(b[0:4]) != 1 {
		return false
	}
	switch string(b[4:8]) {
	case "moov", "mdat", "wide", "free", "skip", "pnot":
		return true
	}
	return false
}

// esdsChannels reads the channel configuration from an esds box body's
// AudioSpecificConfig (0 when absent or in a program config element).
func esdsChannels(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	b = b[4:] // version and flags
	// descriptor reads a tag and its variable-length size.
	descriptor := func(b []byte) (byte, []byte, []byte) {
		if len(b) < 2 {
			return 0, nil, nil
		}
		tag, n, i := b[0], 0, 1
		for ; i < len(b) && i <= 4; i++ {
			n = n<<7 | int(b[i]&0x7F)
			if b[i]&0x80 == 0 {
				i++
				break
			}
		}
		body := b[min(i, len(b)):]
		return tag, body[:min(n, len(body))], body[min(n, len(body)):]
	}
	tag, es, _ := descriptor(b)
	if tag != 0x03 || len(es) < 3 {
		return 0
	}
	flags, es := es[2], es[3:]
	if flags&0x80 != 0 {
		es = es[min(2, len(es)):]
	}
	if flags&0x40 != 0 && len(es) > 0 {
		es = es[min(1+int(es[0]), len(es)):]
	}
	if flags&0x20 != 0 {
		es = es[min(2, len(es)):]
	}
	tag, dc, _ := descriptor(es)
	if tag != 0x04 || len(dc) < 13 {
		return 0
	}
	tag, asc, _ := descriptor(dc[13:])
	if tag != 0x05 || len(asc) < 2 {
		return 0
	}
	var r bitReader
	r.b = asc
	if r.read(5) == 31 {
		r.read(6)
	}
	if r.read(4) == 15 {
		r.read(24)
	}
	switch ch := r.read(4); {
	case r.short:
		return 0
	case ch == 7:
		return 8
	case ch < 7:
		return int(ch)
	}
	return 0
}

// bitReader reads big-endian bit fields; past the end it reads zeros and
// sets short.
type bitReader struct {
	b     []byte
	pos   int
	short bool
}

func (r *bitReader) read(n int) uint32 {
	var v uint32
	for range n {
		i := r.pos / 8
		if i >= len(r.b) {
			r.short = true
			return v
		}
		v = v<<1 | uint32(r.b[i]>>(7-r.pos%8))&1
		r.pos++
	}
	return v
}
