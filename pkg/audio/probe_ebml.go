package audio

import (
	"math"
	"math/bits"
)

// Matroska and WebM. Element IDs are unique across the Matroska schema, so
// the walk is flat: it enters only the master elements on the way to
// Info (duration) and Tracks (track types, channels) and skips every other
// element by its size, unseen. It stops at the first Cluster once both
// have been read.

const (
	ebmlHeader    = 0x1A45DFA3
	ebmlDocType   = 0x4282
	mkvSegment    = 0x18538067
	mkvInfo       = 0x1549A966
	mkvTimescale  = 0x2AD7B1
	mkvDuration   = 0x4489
	mkvTracks     = 0x1654AE6B
	mkvTrackEntry = 0xAE
	mkvTrackType  = 0x83
	mkvAudio      = 0xE1
	mkvChannels   = 0x9F
	mkvCluster    = 0x1F43B675
)

type ebmlParser struct {
	pr            *Prober
	docType       string
	timecodeScale uint64
	duration      float64
	sawInfo       bool
	sawTracks     bool
	hasVideo      bool
	hasAudio      bool
	firstAudio    bool // an Audio element has been seen
	inFirstAudio  bool // inside the first track's Audio element
	channels      int
}

func (e *ebmlParser) step(b []byte, eof bool) int64 {
	if need(e.pr, b, 1, eof) {
		return needMore
	}
	idLen := bits.LeadingZeros8(b[0]) + 1
	if idLen > 4 {
		e.pr.stop()
		return 0
	}
	if need(e.pr, b, idLen+1, eof) {
		return needMore
	}
	szLen := bits.LeadingZeros8(b[idLen]) + 1
	if szLen > 8 {
		e.pr.stop()
		return 0
	}
	hdr := idLen + szLen
	if need(e.pr, b, hdr, eof) {
		return needMore
	}
	var id uint32
	for _, c := range b[:idLen] {
		id = id<<8 | uint32(c)
	}
	size := uint64(b[idLen] & (0xFF >> szLen))
	for _, c := range b[idLen+1 : hdr] {
		size = size<<8 | uint64(c)
	}
	unknown := size == 1<<(7*szLen)-1

	switch id {
	case mkvCluster:
		if e.sawTracks && e.sawInfo {
			e.pr.stop()
			return 0
		}
		if unknown {
			return int64(hdr)
		}
		return adv(int64(hdr), size)
	case mkvInfo:
		e.sawInfo = true
		return int64(hdr)
	case mkvTracks:
		e.sawTracks = true
		return int64(hdr)
	case mkvTrackEntry:
		e.inFirstAudio = false
		return int64(hdr)
	case mkvAudio:
		e.inFirstAudio = !e.firstAudio
		if e.inFirstAudio {
			e.firstAudio, e.channels = true, 1 // Matroska's default
		}
		return int64(hdr)
	case ebmlHeader, mkvSegment:
		return int64(hdr)
	case ebmlDocType, mkvTimescale, mkvDuration, mkvTrackType, mkvChannels:
		if unknown || size > 64 {
			e.pr.stop()
			return 0
		}
		if need(e.pr, b, hdr+int(size), eof) {
			return needMore
		}
		e.leaf(id, b[hdr:hdr+int(size)])
		return int64(hdr) + int64(size)
	}
	if unknown {
		e.pr.stop() // cannot skip an element of unknown size
		return 0
	}
	return adv(int64(hdr), size)
}

func (e *ebmlParser) leaf(id uint32, v []byte) {
	var u uint64
	for _, c := range v {
		u = u<<8 | uint64(c)
	}
	switch id {
	case ebmlDocType:
		e.docType = string(v)
		for i, c := range v {
			if c == 0 { // strings may be NUL-padded
				e.docType = string(v[:i])
				break
			}
		}
	case mkvTimescale:
		e.timecodeScale = u
	case mkvDuration:
		switch len(v) {
		case 4:
			e.duration = float64(math.Float32frombits(uint32(u)))
		case 8:
			e.duration = math.Float64frombits(u)
		}
	case mkvTrackType:
		switch u {
		case 1:
			e.hasVideo = true
		case 2:
			e.hasAudio = true
		}
	case mkvChannels:
		if e.inFirstAudio && u < 256 {
			e.channels = int(u)
		}
	}
}

func (e *ebmlParser) finish() Info {
	if e.docType != "" && e.docType != "webm" && e.docType != "matroska" {
		return Info{} // some other EBML document
	}
	in := Info{Kind: Video, Channels: e.channels}
	switch {
	case e.hasVideo:
	case e.hasAudio, e.pr.ext == ".mka" || e.pr.ext == ".weba":
		in.Kind = Audio
	}
	switch {
	case e.docType == "webm":
		in.Format = "webm"
	case in.Kind == Audio:
		in.Format = "mka"
	default:
		in.Format = "mkv"
	}
	in.Duration = seconds(e.duration*float64(e.timecodeScale), 1e9)
	return in
}
