package audio

import "bytes"

// Bare frame streams: MPEG audio (MP3, MP2, MP1), AAC in ADTS, AC-3 and
// E-AC-3. None has a container header, so each frame header is read as
// it streams past and its samples counted; an MP3's Xing/Info or VBRI
// header, when present, gives the count up front instead.

// frame is what one frame header says.
type frame struct {
	size     int // bytes, header included
	samples  int // per channel
	rate     int
	channels int
	format   string
	// key is what must not change from frame to frame (version, layer,
	// sample rate): a header that differs is garbage that looks like sync.
	key uint32
}

type frameSyntax struct {
	sync   byte // first byte of every header
	hdrLen int  // bytes parse needs
	parse  func(b []byte) (frame, bool)
	// header, if set, reads a whole-file frame count from the first frame
	// (MP3's Xing/Info or VBRI); it sees at most headerLen bytes.
	header func(b []byte, f frame) (frames int64, ok bool)
}

const headerLen = 192

var (
	mpaSyntax  = &frameSyntax{sync: 0xFF, hdrLen: 4, parse: parseMPA, header: mpaVBRHeader}
	adtsSyntax = &frameSyntax{sync: 0xFF, hdrLen: 7, parse: parseADTS}
	ac3Syntax  = &frameSyntax{sync: 0x0B, hdrLen: 8, parse: parseAC3}
)

// detectFrames recognises a frame stream at the start of b (two frames in
// a row that agree, or one that ends the file). After an ID3v2 tag, whose
// padding is not always clean, it also searches the window for the first
// of three agreeing frames.
func detectFrames(pr *Prober, b []byte, eof, hadID3 bool) parser {
	syntaxes := []*frameSyntax{mpaSyntax, adtsSyntax, ac3Syntax}
	for _, syn := range syntaxes {
		if agree(syn, b, 0, 2, eof) {
			return &frameParser{pr: pr, syn: syn, synced: true}
		}
	}
	if !hadID3 {
		return nil
	}
	for off := 1; off < len(b); off++ {
		for _, syn := range syntaxes {
			if b[off] == syn.sync && agree(syn, b, off, 3, eof) {
				return &frameParser{pr: pr, syn: syn, synced: true, lead: int64(off)}
			}
		}
	}
	return nil
}

// agree reports whether want frames in a row start at b[at] with the same
// key (or fewer that end exactly at the end of the file).
func agree(syn *frameSyntax, b []byte, at, want int, eof bool) bool {
	var key uint32
	off := at
	for i := range want {
		if len(b)-off < syn.hdrLen {
			return eof && i > 0 && off == len(b)
		}
		f, ok := syn.parse(b[off:])
		if !ok || (i > 0 && f.key != key) {
			return false
		}
		key = f.key
		off += f.size
	}
	return true
}

// frameParser counts frames. When the frame it expects is not there (a
// trailing ID3v1 or APE tag, a damaged stretch) it searches on for a frame
// that the next one confirms.
type frameParser struct {
	pr      *Prober
	syn     *frameSyntax
	lead    int64 // bytes before the first frame
	synced  bool  // the next byte should start a frame
	started bool
	first   frame
	frames  int64
	samples int64
	// vbrFrames is the count from a Xing/Info/VBRI header (0: none).
	vbrFrames int64
}

func (f *frameParser) step(b []byte, eof bool) int64 {
	if f.lead > 0 {
		n := f.lead
		f.lead = 0
		return n
	}
	if !f.synced {
		return f.resync(b, eof)
	}
	if need(f.pr, b, f.syn.hdrLen, eof) {
		return needMore
	}
	fr, ok := f.syn.parse(b)
	if !ok || (f.started && fr.key != f.first.key) {
		f.synced = false
		return f.resync(b, eof)
	}
	return f.count(b, fr, eof)
}

func (f *frameParser) count(b []byte, fr frame, eof bool) int64 {
	if !f.started {
		if f.syn.header != nil {
			n := min(fr.size, headerLen)
			if len(b) < n && !eof {
				return needMore
			}
			if frames, ok := f.syn.header(b[:min(n, len(b))], fr); ok {
				f.started, f.first, f.vbrFrames = true, fr, frames
				f.pr.stop() // the header has the count: nothing more to learn
				return 0
			}
		}
		f.started, f.first = true, fr
	}
	f.frames++
	f.samples += int64(fr.samples)
	return int64(fr.size)
}

// resync finds the next frame that the one after it confirms.
func (f *frameParser) resync(b []byte, eof bool) int64 {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], f.syn.sync)
		if j < 0 {
			return int64(len(b))
		}
		i += j
		if len(b)-i < f.syn.hdrLen {
			if i > 0 {
				return int64(i)
			}
			if eof {
				f.pr.stop()
			}
			return needMore
		}
		fr, ok := f.syn.parse(b[i:])
		if !ok || (f.started && fr.key != f.first.key) {
			continue
		}
		next := i + fr.size
		if len(b)-next < f.syn.hdrLen {
			if eof {
				continue // a lone frame at the very end: too weak to count
			}
			if i > 0 {
				return int64(i) // keep the candidate at the front and wait
			}
			return needMore
		}
		if nf, ok := f.syn.parse(b[next:]); ok && nf.key == fr.key {
			f.synced = true
			if i > 0 {
				return int64(i)
			}
			return f.count(b, fr, eof)
		}
	}
}

func (f *frameParser) finish() Info {
	if !f.started {
		return Info{}
	}
	in := Info{Kind: Audio, Format: f.first.format, Channels: f.first.channels}
	if f.vbrFrames > 0 {
		in.Duration = seconds(float64(f.vbrFrames)*float64(f.first.samples), float64(f.first.rate))
	} else {
		in.Duration = seconds(float64(f.samples), float64(f.first.rate))
	}
	return in
}

// MPEG audio bit rates in kbit/s, by [MPEG-2/2.5][layer-1][index].
var mpaKbps = [2][3][16]int{
	{
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},
	},
	{
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
	},
}

// parseMPA reads an MPEG-1/2/2.5 layer I/II/III frame header. Free-format
// frames (no bit rate in the header) are not recognised.
func parseMPA(b []byte) (frame, bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return frame{}, false
	}
	ver := (b[1] >> 3) & 3       // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
	layerBits := (b[1] >> 1) & 3 // 1: III, 2: II, 3: I
	bri, sri := b[2]>>4, (b[2]>>2)&3
	if ver == 1 || layerBits == 0 || bri == 0 || bri == 15 || sri == 3 || b[3]&3 == 2 {
		return frame{}, false
	}
	layer := 4 - int(layerBits)
	rate := [3]int{44100, 48000, 32000}[sri]
	lsf := 0
	switch ver {
	case 2:
		rate, lsf = rate/2, 1
	case 0:
		rate, lsf = rate/4, 1
	}
	bps := mpaKbps[lsf][layer-1][bri] * 1000
	pad := int(b[2]>>1) & 1
	f := frame{rate: rate, channels: 2, format: "mp3", key: uint32(b[1]&0xFE)<<8 | uint32(b[2]&0x0C)}
	switch {
	case layer == 1:
		f.size, f.samples, f.format = (12*bps/rate+pad)*4, 384, "mp1"
	case layer == 2:
		f.size, f.samples, f.format = 144*bps/rate+pad, 1152, "mp2"
	case lsf == 1:
		f.size, f.samples = 72*bps/rate+pad, 576
	default:
		f.size, f.samples = 144*bps/rate+pad, 1152
	}
	if b[3]>>6 == 3 {
		f.channels = 1
	}
	return f, f.size >= 4
}

// mpaVBRHeader reads the frame count of a Xing/Info (LAME) or VBRI header
// in the first frame. That frame holds no audio and is not counted.
func mpaVBRHeader(b []byte, f frame) (int64, bool) {
	if f.format != "mp3" {
		return 0, false
	}
	side := 32 // side information: MPEG-1 stereo
	switch {
	case f.samples == 576 && f.channels == 1:
		side = 9
	case f.samples == 576 || f.channels == 1:
		side = 17
	}
	if x := 4 + side; len(b) >= x+12 {
		if tag := string(b[x : x+4]); tag == "Xing" || tag == "Info" {
			if be32(b[x+4:x+8])&1 != 0 {
				n := int64(be32(b[x+8 : x+12]))
				return n, n > 0
			}
			return 0, false
		}
	}
	if len(b) >= 36+18 && string(b[36:40]) == "VBRI" {
		n := int64(be32(b[36+14 : 36+18]))
		return n, n > 0
	}
	return 0, false
}

var adtsRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseADTS reads an AAC ADTS frame header. Channel configuration 0 (the
// layout is in the stream) reports 0 channels.
func parseADTS(b []byte) (frame, bool) {
	if len(b) < 7 || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
		return frame{}, false
	}
	sfi := int(b[2]>>2) & 0xF
	if sfi >= len(adtsRates) {
		return frame{}, false
	}
	size := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
	hdr := 7
	if b[1]&1 == 0 {
		hdr = 9 // with CRC
	}
	if size <= hdr {
		return frame{}, false
	}
	return frame{
		size:     size,
		samples:  (int(b[6]&3) + 1) * 1024,
		rate:     adtsRates[sfi],
		channels: int(b[2]&1)<<2 | int(b[3]>>6),
		format:   "aac",
		key:      uint32(b[1]&0x08)<<8 | uint32(sfi),
	}, true
}

var (
	ac3Kbps     = [19]int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640}
	ac3Channels = [8]int{2, 1, 2, 3, 3, 4, 4, 5}
	ac3Rates    = [3]int{48000, 44100, 32000}
)

// parseAC3 reads an AC-3 or E-AC-3 sync frame header. E-AC-3 dependent
// substreams carry no samples of their own.
func parseAC3(b []byte) (frame, bool) {
	if len(b) < 8 || b[0] != 0x0B || b[1] != 0x77 {
		return frame{}, false
	}
	bsid := b[5] >> 3
	switch {
	case bsid <= 10:
		fscod, code := int(b[4]>>6), int(b[4]&0x3F)
		if fscod == 3 || code >= 38 {
			return frame{}, false
		}
		kbps := ac3Kbps[code>>1]
		words := [3]int{2 * kbps, kbps*1536000/705600 + code&1, 3 * kbps}[fscod]
		acmod := int(b[6] >> 5)
		// lfeon follows acmod and up to three 2-bit mix fields.
		bit := 3
		if acmod&1 != 0 && acmod != 1 {
			bit += 2
		}
		if acmod&4 != 0 {
			bit += 2
		}
		if acmod == 2 {
			bit += 2
		}
		lfe := int(b[6+bit/8]>>(7-bit%8)) & 1
		return frame{size: 2 * words, samples: 1536, rate: ac3Rates[fscod],
			channels: ac3Channels[acmod] + lfe, format: "ac3", key: 0xAC30 | uint32(fscod)}, true
	case bsid <= 16:
		strmtyp, substream := b[2]>>6, (b[2]>>3)&7
		size := (int(b[2]&7)<<8 | int(b[3]) + 1) * 2
		fscod := int(b[4] >> 6)
		var rate, blocks int
		if fscod == 3 {
			fscod2 := int(b[4]>>4) & 3
			if fscod2 == 3 {
				return frame{}, false
			}
			rate, blocks = [3]int{24000, 22050, 16000}[fscod2], 6
		} else {
			rate, blocks = ac3Rates[fscod], [4]int{1, 2, 3, 6}[(b[4]>>4)&3]
		}
		if strmtyp == 3 {
			return frame{}, false
		}
		f := frame{size: size, rate: rate, format: "eac3", key: 0xEAC30000 | uint32(rate)}
		if strmtyp != 1 && substream == 0 {
			f.samples = blocks * 256
			f.channels = ac3Channels[(b[4]>>1)&7] + int(b[4]&1)
		}
		return f, true
	}
	return frame{}, false
}
