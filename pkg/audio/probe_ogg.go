package audio

import "bytes"

// FLAC (native and in Ogg) and Ogg: Vorbis, Opus, FLAC and Speex audio,
// Theora, Dirac and VP8 video.

// streamInfo is FLAC's STREAMINFO block body (34 bytes; 18 are read).
type streamInfo struct {
	rate     int
	channels int
	samples  uint64
}

func parseStreamInfo(b []byte) streamInfo {
	return streamInfo{
		rate:     int(b[10])<<12 | int(b[11])<<4 | int(b[12])>>4,
		channels: int(b[12]>>1)&7 + 1,
		samples:  uint64(b[13]&0x0F)<<32 | uint64(be32(b[14:18])),
	}
}

// flacParser reads STREAMINFO: total samples over the sample rate. A
// total of 0 means the encoder did not know it: the duration is then 0.
type flacParser struct {
	pr      *Prober
	started bool
	ok      bool
	si      streamInfo
}

func (f *flacParser) step(b []byte, eof bool) int64 {
	if !f.started {
		if need(f.pr, b, 4, eof) {
			return needMore
		}
		f.started = true
		return 4
	}
	if need(f.pr, b, 4, eof) {
		return needMore
	}
	size := uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	if b[0]&0x7F == 0 {
		if need(f.pr, b, 4+18, eof) {
			return needMore
		}
		f.si, f.ok = parseStreamInfo(b[4:]), true
		f.pr.stop()
		return 0
	}
	if b[0]&0x80 != 0 { // last metadata block, and no STREAMINFO
		f.pr.stop()
		return 0
	}
	return adv(4, size)
}

func (f *flacParser) finish() Info {
	in := Info{Kind: Audio, Format: "flac"}
	if f.ok {
		in.Channels = f.si.channels
		in.Duration = seconds(float64(f.si.samples), float64(f.si.rate))
	}
	return in
}

// oggStream is one logical bitstream, identified by its first packet.
type oggStream struct {
	serial   uint32
	codec    string
	video    bool
	rate     int
	channels int
	preSkip  int
	granule  int64 // of the last page that ended a packet; -1 if none
}

func (s *oggStream) seconds() float64 {
	if s.granule <= 0 {
		return 0
	}
	g := s.granule
	if s.codec == "opus" {
		g -= int64(s.preSkip)
	}
	return seconds(float64(g), float64(s.rate))
}

// oggParser walks Ogg pages: the BOS pages name each stream's codec, and
// the last granule position of the first audio stream gives the duration.
// A chained file (one link after another, as radio dumps are) adds up its
// links.
type oggParser struct {
	pr       *Prober
	link     []*oggStream // streams of the current link
	sawData  bool         // a non-BOS page in the current link
	earlier  float64      // seconds in finished links
	first    *oggStream   // first audio stream of the file, for the format
	anyVideo bool
}

// maxOggStreams bounds the streams tracked in one link.
const maxOggStreams = 16

func newOggParser(pr *Prober) *oggParser { return &oggParser{pr: pr} }

func (o *oggParser) step(b []byte, eof bool) int64 {
	if need(o.pr, b, 27, eof) {
		return needMore
	}
	if string(b[0:4]) != "OggS" || b[4] != 0 {
		// Lost sync: look for the next capture pattern.
		if i := bytes.Index(b[1:], []byte("OggS")); i >= 0 {
			return int64(i + 1)
		}
		return int64(len(b) - 3)
	}
	nseg := int(b[26])
	hdr := 27 + nseg
	if need(o.pr, b, hdr, eof) {
		return needMore
	}
	body := 0
	for _, s := range b[27:hdr] {
		body += int(s)
	}
	granule := int64(le64(b[6:14]))
	serial := le32(b[14:18])
	if b[5]&2 != 0 { // beginning of stream
		want := min(body, 64)
		if need(o.pr, b, hdr+want, eof) {
			return needMore
		}
		if o.sawData {
			o.earlier += o.linkSeconds()
			o.link, o.sawData = nil, false
		}
		if len(o.link) < maxOggStreams {
			s := identifyOgg(b[hdr : hdr+want])
			s.serial, s.granule = serial, -1
			o.link = append(o.link, s)
			if s.video {
				o.anyVideo = true
			}
			if o.first == nil && s.rate > 0 {
				o.first = s
			}
		}
	} else {
		o.sawData = true
	}
	if granule != -1 {
		for _, s := range o.link {
			if s.serial == serial {
				s.granule = granule
			}
		}
	}
	return int64(hdr + body)
}

// linkSeconds is the duration of the current link's first audio stream.
func (o *oggParser) linkSeconds() float64 {
	for _, s := range o.link {
		if s.rate > 0 {
			return s.seconds()
		}
	}
	return 0
}

func (o *oggParser) finish() Info {
	in := Info{Kind: Audio, Format: "ogg"}
	switch {
	case o.anyVideo:
		in.Kind, in.Format = Video, "ogv"
	case o.first == nil && o.pr.ext == ".ogv":
		in.Kind, in.Format = Video, "ogv"
	}
	if o.first != nil {
		if o.first.codec == "opus" && !o.anyVideo {
			in.Format = "opus"
		}
		in.Channels = o.first.channels
		in.Duration = o.earlier + o.linkSeconds()
	}
	return in
}

// identifyOgg reads a stream's first packet (up to 64 bytes of it).
func identifyOgg(p []byte) *oggStream {
	has := func(magic string) bool { return bytes.HasPrefix(p, []byte(magic)) }
	s := &oggStream{}
	switch {
	case has("\x01vorbis") && len(p) >= 16:
		s.codec, s.channels, s.rate = "vorbis", int(p[11]), int(le32(p[12:16]))
	case has("OpusHead") && len(p) >= 12:
		s.codec, s.channels, s.preSkip, s.rate = "opus", int(p[9]), int(le16(p[10:12])), 48000
	case has("\x7fFLAC") && len(p) >= 17+18 && string(p[9:13]) == "fLaC":
		si := parseStreamInfo(p[17:])
		s.codec, s.channels, s.rate = "flac", si.channels, si.rate
	case has("Speex   ") && len(p) >= 52:
		s.codec, s.rate, s.channels = "speex", int(le32(p[36:40])), int(le32(p[48:52]))
	case has("\x80theora"), has("BBCD\x00"), has("OVP80"), has("\x80daala"):
		s.codec, s.video = "video", true
	}
	if s.rate < 0 || s.rate > 1<<20 {
		s.rate = 0
	}
	if s.channels < 0 || s.channels > 255 {
		s.channels = 0
	}
	return s
}
