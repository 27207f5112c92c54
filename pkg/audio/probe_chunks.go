package audio

import (
	"encoding/binary"
	"math"
)

// Chunked PCM containers: WAV (RIFF, RF64, BW64), AIFF/AIFC, CAF and
// Sun .au. Each keeps its sample format in a header chunk; the duration is
// the data size over the byte rate, or a frame count.

var (
	le16 = binary.LittleEndian.Uint16
	le32 = binary.LittleEndian.Uint32
	le64 = binary.LittleEndian.Uint64
	be16 = binary.BigEndian.Uint16
	be32 = binary.BigEndian.Uint32
	be64 = binary.BigEndian.Uint64
)

// seconds divides and refuses nonsense (a zero, negative or absurd rate),
// so a hostile header yields 0 rather than Inf or NaN.
func seconds(units, perSecond float64) float64 {
	if perSecond <= 0 || units <= 0 || math.IsNaN(units) || math.IsNaN(perSecond) ||
		math.IsInf(units, 0) || math.IsInf(perSecond, 0) {
		return 0
	}
	d := units / perSecond
	if d > 1e9 || math.IsNaN(d) {
		return 0
	}
	return d
}

// need is the usual answer of a parser short of n bytes: wait for more,
// or give up at the end of the stream.
func need(pr *Prober, b []byte, n int, eof bool) bool {
	if len(b) >= n {
		return false
	}
	if eof {
		pr.stop()
	}
	return true
}

// wavParser walks RIFF chunks up to the data chunk. The byte count is the
// data chunk's size, or what really follows it when a streaming writer
// left the size at 0 or 0xFFFFFFFF, or the file is cut short.
type wavParser struct {
	pr        *Prober
	started   bool
	rf64      bool
	ds64Data  int64
	fmtOK     bool
	tag       int
	channels  int
	rate      int64
	byteRate  int64
	align     int64
	dataStart int64
	dataSize  int64 // -1: to the end of the file
}

func (w *wavParser) step(b []byte, eof bool) int64 {
	if !w.started {
		if need(w.pr, b, 12, eof) {
			return needMore
		}
		w.started = true
		w.rf64 = string(b[0:4]) != "RIFF"
		w.ds64Data, w.dataStart = -1, -1
		return 12
	}
	if need(w.pr, b, 8, eof) {
		return needMore
	}
	size := uint64(le32(b[4:8]))
	switch string(b[0:4]) {
	case "fmt ":
		if size < 16 {
			w.pr.stop()
			return 0
		}
		if need(w.pr, b, 24, eof) {
			return needMore
		}
		w.tag = int(le16(b[8:10]))
		w.channels = int(le16(b[10:12]))
		w.rate = int64(le32(b[12:16]))
		w.byteRate = int64(le32(b[16:20]))
		w.align = int64(le16(b[20:22]))
		w.fmtOK = true
	case "ds64":
		if size < 16 {
			w.pr.stop()
			return 0
		}
		if need(w.pr, b, 24, eof) {
			return needMore
		}
		if v := le64(b[16:24]); v < math.MaxInt64/4 {
			w.ds64Data = int64(v)
		}
	case "data":
		if !w.fmtOK {
			w.pr.stop()
			return 0
		}
		w.dataStart = w.pr.pos + 8
		switch {
		case w.rf64 && size == 0xFFFFFFFF && w.ds64Data >= 0:
			w.dataSize = w.ds64Data
		case size == 0xFFFFFFFF || size == 0:
			w.dataSize = -1
		default:
			w.dataSize = int64(size)
		}
		// Nothing after the samples matters; finish counts what is there.
		w.pr.stop()
		return 0
	}
	return adv(8, size+size&1)
}

func (w *wavParser) finish() Info {
	in := Info{Kind: Audio, Format: "wav"}
	if !w.fmtOK {
		return in
	}
	in.Channels = w.channels
	if w.dataStart < 0 {
		return in
	}
	n := w.pr.total - w.dataStart
	if w.dataSize >= 0 && w.dataSize < n {
		n = w.dataSize
	}
	perSec := w.byteRate
	switch w.tag {
	case 1, 3, 6, 7, 0xFFFE: // PCM, float, A-law, µ-law, extensible: exact
		if w.align > 0 && w.rate > 0 {
			perSec = w.align * w.rate
		}
	}
	in.Duration = seconds(float64(n), float64(perSec))
	return in
}

// aiffParser reads the COMM chunk: channels, frame count and an 80-bit
// float sample rate.
type aiffParser struct {
	pr       *Prober
	started  bool
	aifc     bool
	comm     bool
	channels int
	frames   float64
	rate     float64
}

// aifcFramesPerCount is how many sample frames one unit of an AIFC COMM
// chunk's frame count stands for: 1 for PCM and the log codecs, 64 for
// IMA ADPCM (which counts packets), and 0 (duration unknown) for codecs
// whose counting is not known here.
func aifcFramesPerCount(compression string) float64 {
	switch compression {
	case "NONE", "none", "sowt", "twos", "raw ", "in24", "in32", "42ni",
		"fl32", "FL32", "fl64", "FL64", "alaw", "ALAW", "ulaw", "ULAW":
		return 1
	case "ima4":
		return 64
	}
	return 0
}

func (a *aiffParser) step(b []byte, eof bool) int64 {
	if !a.started {
		if need(a.pr, b, 12, eof) {
			return needMore
		}
		a.started = true
		a.aifc = string(b[8:12]) == "AIFC"
		return 12
	}
	if need(a.pr, b, 8, eof) {
		return needMore
	}
	size := uint64(be32(b[4:8]))
	if string(b[0:4]) == "COMM" {
		n := 26
		if a.aifc {
			n = 30 // and the compression type
		}
		if size < uint64(n-8) {
			a.pr.stop()
			return 0
		}
		if need(a.pr, b, n, eof) {
			return needMore
		}
		a.channels = int(be16(b[8:10]))
		a.frames = float64(be32(b[10:14]))
		a.rate = extended80(b[16:26])
		a.comm = true
		if a.aifc {
			a.frames *= aifcFramesPerCount(string(b[26:30]))
		}
		a.pr.stop()
		return 0
	}
	return adv(8, size+size&1)
}

func (a *aiffParser) finish() Info {
	in := Info{Kind: Audio, Format: "aiff"}
	if a.comm {
		in.Channels = a.channels
		in.Duration = seconds(a.frames, a.rate)
	}
	return in
}

// extended80 decodes an IEEE 754 80-bit extended float (AIFF's sample
// rate); negative or odd values come back as 0.
func extended80(b []byte) float64 {
	se := be16(b[0:2])
	mant := be64(b[2:10])
	if se&0x8000 != 0 || mant == 0 {
		return 0
	}
	return math.Ldexp(float64(mant), int(se&0x7fff)-16383-63)
}

// cafParser reads Core Audio Format chunks: desc (rate, packet shape,
// channels), pakt (frame count for compressed data) and data's size.
type cafParser struct {
	pr            *Prober
	started       bool
	desc          bool
	rate          float64
	bytesPerPkt   uint32
	framesPerPkt  uint32
	channels      int
	validFrames   int64 // from pakt, when sawValidCount
	sawValidCount bool
	dataStart     int64 // -1 until the data chunk is seen
	dataSize      int64 // -1: to the end of the file
}

func (c *cafParser) step(b []byte, eof bool) int64 {
	if !c.started {
		if need(c.pr, b, 8, eof) {
			return needMore
		}
		c.started = true
		c.dataStart = -1
		return 8
	}
	if need(c.pr, b, 12, eof) {
		return needMore
	}
	size := int64(be64(b[4:12]))
	switch string(b[0:4]) {
	case "desc":
		if need(c.pr, b, 12+32, eof) {
			return needMore
		}
		c.rate = math.Float64frombits(be64(b[12:20]))
		c.bytesPerPkt = be32(b[28:32])
		c.framesPerPkt = be32(b[32:36])
		c.channels = int(be32(b[36:40]))
		c.desc = true
	case "pakt":
		if need(c.pr, b, 12+24, eof) {
			return needMore
		}
		if v := int64(be64(b[20:28])); v > 0 {
			c.validFrames, c.sawValidCount = v, true
		}
	case "data":
		c.dataStart = c.pr.pos + 12
		if size < 0 {
			c.dataSize = -1
			c.pr.stop() // runs to the end of the file
			return 0
		}
		c.dataSize = size
	}
	if size < 0 {
		c.pr.stop()
		return 0
	}
	return adv(12, uint64(size))
}

func (c *cafParser) finish() Info {
	in := Info{Kind: Audio, Format: "caf"}
	if !c.desc {
		return in
	}
	if c.channels < 256 {
		in.Channels = c.channels
	}
	switch {
	case c.sawValidCount:
		in.Duration = seconds(float64(c.validFrames), c.rate)
	case c.dataStart >= 0 && c.bytesPerPkt > 0 && c.framesPerPkt > 0:
		n := c.pr.total - c.dataStart
		if c.dataSize >= 0 && c.dataSize < n {
			n = c.dataSize
		}
		n -= 4 // the data chunk starts with an edit count
		pkts := n / int64(c.bytesPerPkt)
		in.Duration = seconds(float64(pkts)*float64(c.framesPerPkt), c.rate)
	}
	return in
}

// auParser reads the Sun/NeXT .au header.
type auParser struct {
	pr       *Prober
	ok       bool
	hdrSize  int64
	dataSize uint32
	encoding uint32
	rate     uint32
	channels uint32
}

func (a *auParser) step(b []byte, eof bool) int64 {
	if need(a.pr, b, 24, eof) {
		return needMore
	}
	a.hdrSize = int64(be32(b[4:8]))
	a.dataSize = be32(b[8:12])
	a.encoding = be32(b[12:16])
	a.rate = be32(b[16:20])
	a.channels = be32(b[20:24])
	a.ok = true
	a.pr.stop()
	return 0
}

func (a *auParser) finish() Info {
	in := Info{Kind: Audio, Format: "au"}
	if !a.ok {
		return in
	}
	if a.channels < 256 {
		in.Channels = int(a.channels)
	}
	var width int64
	switch a.encoding {
	case 1, 2, 27: // µ-law, 8-bit linear, A-law
		width = 1
	case 3:
		width = 2
	case 4:
		width = 3
	case 5, 6:
		width = 4
	case 7:
		width = 8
	default:
		return in // compressed: no byte rate to divide by
	}
	n := a.pr.total - a.hdrSize
	if a.dataSize != 0xFFFFFFFF && int64(a.dataSize) < n {
		n = int64(a.dataSize)
	}
	in.Duration = seconds(float64(n), float64(width)*float64(a.channels)*float64(a.rate))
	return in
}
