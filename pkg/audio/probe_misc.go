package audio

import (
	"bytes"
	"math"
)

// ASF (WMA, WMV), AMR, FLV and MPEG transport streams.

const (
	asfHeaderGUID = "\x30\x26\xB2\x75\x8E\x66\xCF\x11\xA6\xD9\x00\xAA\x00\x62\xCE\x6C"
	asfFileProps  = "\xA1\xDC\xAB\x8C\x47\xA9\xCF\x11\x8E\xE4\x00\xC0\x0C\x20\x53\x65"
	asfStreamProp = "\x91\x07\xDC\xB7\xB7\xA9\xCF\x11\x8E\xE6\x00\xC0\x0C\x20\x53\x65"
	asfAudioMedia = "\x40\x9E\x69\xF8\x4D\x5B\xCF\x11\xA8\xFD\x00\x80\x5F\x5C\x44\x2B"
	asfVideoMedia = "\xC0\xEF\x19\xBC\x4D\x5B\xCF\x11\xA8\xFD\x00\x80\x5F\x5C\x44\x2B"
)

// asfParser reads the objects of the ASF header: File Properties (play
// duration less preroll) and one Stream Properties per stream.
type asfParser struct {
	pr        *Prober
	started   bool
	headerEnd int64
	props     bool
	play      uint64 // 100 ns units
	preroll   uint64 // ms
	broadcast bool   // live: the durations are meaningless
	hasAudio  bool
	hasVideo  bool
	channels  int
}

func (a *asfParser) step(b []byte, eof bool) int64 {
	if !a.started {
		if need(a.pr, b, 30, eof) {
			return needMore
		}
		a.started = true
		a.headerEnd = adv(a.pr.pos, le64(b[16:24]))
		return 30
	}
	if a.pr.pos >= a.headerEnd {
		a.pr.stop() // the data object follows: nothing more for us
		return 0
	}
	if need(a.pr, b, 24, eof) {
		return needMore
	}
	size := le64(b[16:24])
	if size < 24 {
		a.pr.stop()
		return 0
	}
	switch string(b[0:16]) {
	case asfFileProps:
		if size >= 92 {
			if need(a.pr, b, 92, eof) {
				return needMore
			}
			a.props = true
			a.play, a.preroll = le64(b[64:72]), le64(b[80:88])
			a.broadcast = le32(b[88:92])&1 != 0
		}
	case asfStreamProp:
		if size >= 82 {
			if need(a.pr, b, 82, eof) {
				return needMore
			}
			switch string(b[24:40]) {
			case asfAudioMedia:
				if !a.hasAudio {
					a.channels = int(le16(b[80:82]))
				}
				a.hasAudio = true
			case asfVideoMedia:
				a.hasVideo = true
			}
		}
	}
	return adv(0, size)
}

func (a *asfParser) finish() Info {
	in := Info{Kind: Audio, Format: "wma", Channels: a.channels}
	if a.hasVideo || (!a.hasAudio && a.pr.ext == ".wmv") {
		in.Kind, in.Format = Video, "wmv"
	}
	if a.props && !a.broadcast && a.play < math.MaxInt64 && a.preroll < math.MaxInt64/2 {
		in.Duration = math.Max(0, seconds(float64(a.play), 1e7)-float64(a.preroll)/1000)
	}
	return in
}

// AMR storage format frame sizes (table of contents byte included), by
// frame type, as ffmpeg reads them.
var (
	amrNBSizes = [16]int64{13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1}
	amrWBSizes = [16]int64{18, 24, 33, 37, 41, 47, 51, 59, 61, 6, 1, 1, 1, 1, 1, 1}
)

// amrParser counts AMR frames: 20 ms each, whatever their mode.
type amrParser struct {
	pr      *Prober
	wb      bool
	started bool
	frames  int64
}

func newAMRParser(pr *Prober, wb bool) *amrParser { return &amrParser{pr: pr, wb: wb} }

func (a *amrParser) step(b []byte, eof bool) int64 {
	if !a.started {
		a.started = true
		if a.wb {
			return 9
		}
		return 6
	}
	if len(b) == 0 {
		return needMore
	}
	size := amrNBSizes[(b[0]>>3)&0x0F]
	if a.wb {
		size = amrWBSizes[(b[0]>>3)&0x0F]
	}
	if int64(len(b)) < size && eof {
		a.pr.stop() // a partial last frame is not counted
		return 0
	}
	a.frames++
	return size
}

func (a *amrParser) finish() Info {
	return Info{Kind: Audio, Format: "amr", Channels: 1, Duration: float64(a.frames) * 0.02}
}

// flvParser trusts the header's audio/video flags and reads the duration
// that onMetaData (an AMF0 number after the "duration" key) states.
type flvParser struct {
	pr       *Prober
	flags    byte
	duration float64
}

func newFLVParser(pr *Prober, flags byte) *flvParser { return &flvParser{pr: pr, flags: flags} }

func (f *flvParser) step(b []byte, _ bool) int64 {
	// The sniff window is still at the front: onMetaData is the first tag.
	win := b[:min(len(b), sniffLen)]
	if i := bytes.Index(win, []byte("\x00\x08duration\x00")); i >= 0 && i+19 <= len(win) {
		d := math.Float64frombits(be64(win[i+11 : i+19]))
		if d > 0 && d < 1e9 {
			f.duration = d
		}
	}
	f.pr.stop()
	return 0
}

func (f *flvParser) finish() Info {
	in := Info{Kind: Video, Format: "flv", Duration: f.duration}
	if f.flags&0x05 == 0x04 {
		in.Kind = Audio
	}
	return in
}

// tsPackets recognises an MPEG transport stream: 0x47 every 188 bytes
// (192 for M2TS, with a 4-byte time code first) through the window, at
// least four packets.
func tsPackets(b []byte) (stride, off int, ok bool) {
	for _, c := range [2][2]int{{188, 0}, {192, 4}} {
		stride, off := c[0], c[1]
		n := 0
		for p := off; p < len(b) && n < 16; p += stride {
			if b[p] != 0x47 {
				n = -1
				break
			}
			n++
		}
		if n >= 4 {
			return stride, off, true
		}
	}
	return 0, 0, false
}

// tsParser reads the PAT and PMT to tell a radio-style audio-only stream
// from video (the default: that is what transport streams mostly carry).
type tsParser struct {
	pr       *Prober
	stride   int
	off      int
	packets  int
	pmtPIDs  []int
	sawPMT   bool
	hasVideo bool
	hasAudio bool
}

func (t *tsParser) step(b []byte, eof bool) int64 {
	if need(t.pr, b, t.stride, eof) {
		return needMore
	}
	pkt := b[t.off : t.off+188]
	t.packets++
	if pkt[0] != 0x47 || t.packets > 10000 {
		t.pr.stop()
		return 0
	}
	pid := int(pkt[1]&0x1F)<<8 | int(pkt[2])
	afc := pkt[3] >> 4 & 3
	start := 4
	if afc&2 != 0 {
		start = 5 + int(pkt[4])
	}
	if pkt[1]&0x40 == 0 || afc&1 == 0 || start >= len(pkt) {
		return int64(t.stride)
	}
	sec := pkt[start:]
	if ptr := int(sec[0]); 1+ptr < len(sec) {
		sec = sec[1+ptr:]
	} else {
		return int64(t.stride)
	}
	if len(sec) < 3 {
		return int64(t.stride)
	}
	end := min(len(sec), 3+(int(sec[1]&0x0F)<<8|int(sec[2]))-4) // less the CRC
	switch {
	case pid == 0 && sec[0] == 0x00:
		for i := 8; i+4 <= end && len(t.pmtPIDs) < 16; i += 4 {
			if be16(sec[i:i+2]) != 0 { // program 0 is the network PID
				t.pmtPIDs = append(t.pmtPIDs, int(be16(sec[i+2:i+4])&0x1FFF))
			}
		}
	case sec[0] == 0x02 && t.isPMT(pid) && len(sec) >= 12:
		i := 12 + int(be16(sec[10:12])&0x0FFF)
		for ; i+5 <= end; i += 5 + int(be16(sec[i+3:i+5])&0x0FFF) {
			switch sec[i] {
			case 0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xD1, 0xEA:
				t.hasVideo = true
			case 0x03, 0x04, 0x0F, 0x11, 0x1C, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87:
				t.hasAudio = true
			}
		}
		t.sawPMT = true
		t.pr.stop()
		return 0
	}
	return int64(t.stride)
}

func (t *tsParser) isPMT(pid int) bool {
	for _, p := range t.pmtPIDs {
		if p == pid {
			return true
		}
	}
	return false
}

func (t *tsParser) finish() Info {
	in := Info{Kind: Video, Format: "ts"}
	if t.sawPMT && !t.hasVideo && t.hasAudio {
		in.Kind = Audio
	}
	return in
}
