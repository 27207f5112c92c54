package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotWAV means the input does not start with a RIFF (or RF64) WAVE header.
var ErrNotWAV = errors.New("audio: not a WAV file")

// WAVHeader is what ReadWAVHeader learns from the chunks before the samples.
type WAVHeader struct {
	SampleRate, Channels, BitsPerSample int
	// Format is the fmt chunk's format tag: 1 PCM, 3 float, 0xFFFE extensible...
	Format int
	// ByteRate is the fmt chunk's average bytes per second.
	ByteRate int
	// DataBytes is the data chunk's declared size. Writers that stream (and
	// do not seek back) leave it at 0xFFFFFFFF, so compare it with the bytes
	// really there (see DataOffset) before trusting it.
	DataBytes int64
	// DataOffset is where the samples start: the number of bytes
	// ReadWAVHeader consumed.
	DataOffset int64
	// Duration in seconds, from DataBytes and the byte rate (0 if unknown).
	Duration float64
	// Comment is the LIST/INFO ICMT text, if that list comes before the data
	// chunk (anything after the samples is never read).
	Comment string
}

const (
	// maxInfoList bounds how much of a LIST/INFO chunk is held in memory; a
	// larger one is skipped (its comment is then unknown), so a hostile file
	// cannot make a header read allocate much.
	maxInfoList = 64 << 10
	// maxFmt bounds what is read of a fmt chunk; only the first 16 bytes matter.
	maxFmt = 1 << 10
)

// ReadWAVHeader reads r up to the start of the data chunk and no further, so
// the caller can go on reading the samples (or discard them) from r. It
// returns ErrNotWAV when r does not begin with a RIFF/WAVE (or RF64/WAVE)
// header, and another error for a WAV that ends or breaks before its data.
func ReadWAVHeader(r io.Reader) (*WAVHeader, error) {
	var off int64
	read := func(b []byte) error {
		n, err := io.ReadFull(r, b)
		off += int64(n)
		return err
	}
	skip := func(n int64) error {
		m, err := io.CopyN(io.Discard, r, n)
		off += m
		return err
	}
	var riff [12]byte
	if err := read(riff[:]); err != nil {
		return nil, ErrNotWAV
	}
	id := string(riff[0:4])
	if (id != "RIFF" && id != "RF64") || string(riff[8:12]) != "WAVE" {
		return nil, ErrNotWAV
	}
	rf64 := id == "RF64"
	var ds64Data int64 = -1

	h := &WAVHeader{}
	haveFmt := false
	for {
		var ch [8]byte
		if err := read(ch[:]); err != nil {
			return nil, fmt.Errorf("audio: read WAV chunk header at %d: %w", off, unexpected(err))
		}
		cid := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch cid {
		case "data":
			if !haveFmt {
				return nil, errors.New("audio: WAV data chunk comes before its fmt chunk")
			}
			h.DataBytes = size
			if rf64 && size == 0xFFFFFFFF && ds64Data >= 0 {
				h.DataBytes = ds64Data
			}
			h.DataOffset = off
			h.Duration = h.duration()
			return h, nil
		case "fmt ":
			if size < 16 {
				return nil, fmt.Errorf("audio: WAV fmt chunk is %d bytes, want at least 16", size)
			}
			b := make([]byte, min(size, maxFmt))
			if err := read(b); err != nil {
				return nil, fmt.Errorf("audio: read WAV fmt chunk: %w", unexpected(err))
			}
			h.Format = int(binary.LittleEndian.Uint16(b[0:2]))
			h.Channels = int(binary.LittleEndian.Uint16(b[2:4]))
			h.SampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
			h.ByteRate = int(binary.LittleEndian.Uint32(b[8:12]))
			h.BitsPerSample = int(binary.LittleEndian.Uint16(b[14:16]))
			haveFmt = true
			if err := skip(size - int64(len(b)) + size%2); err != nil {
				return nil, fmt.Errorf("audio: skip WAV fmt chunk: %w", unexpected(err))
			}
		case "ds64":
			// RF64 keeps the real 64-bit sizes here; the 32-bit fields say 0xFFFFFFFF.
			if size < 16 {
				return nil, fmt.Errorf("audio: RF64 ds64 chunk is %d bytes, want at least 16", size)
			}
			var b [16]byte
			if err := read(b[:]); err != nil {
				return nil, fmt.Errorf("audio: read RF64 ds64 chunk: %w", unexpected(err))
			}
			ds64Data = int64(binary.LittleEndian.Uint64(b[8:16]))
			if err := skip(size - 16 + size%2); err != nil {
				return nil, fmt.Errorf("audio: skip RF64 ds64 chunk: %w", unexpected(err))
			}
		case "LIST":
			if size >= 4 && size-4 <= maxInfoList {
				b := make([]byte, size)
				if err := read(b); err != nil {
					return nil, fmt.Errorf("audio: read WAV LIST chunk: %w", unexpected(err))
				}
				if string(b[0:4]) == "INFO" {
					if c, ok := infoComment(b[4:]); ok {
						h.Comment = c
					}
				}
				if err := skip(size % 2); err != nil {
					return nil, fmt.Errorf("audio: skip WAV LIST pad: %w", unexpected(err))
				}
				continue
			}
			if err := skip(size + size%2); err != nil {
				return nil, fmt.Errorf("audio: skip WAV LIST chunk: %w", unexpected(err))
			}
		default:
			if err := skip(size + size%2); err != nil {
				return nil, fmt.Errorf("audio: skip WAV %q chunk: %w", cid, unexpected(err))
			}
		}
	}
}

func (h *WAVHeader) duration() float64 {
	rate := int64(h.SampleRate) * int64(h.Channels) * int64(h.BitsPerSample) / 8
	if rate <= 0 {
		// Compressed payloads (MP3 in WAV, say) only have the average rate.
		rate = int64(h.ByteRate)
	}
	if rate <= 0 {
		return 0
	}
	return float64(h.DataBytes) / float64(rate)
}

// unexpected turns a clean EOF in the middle of a header into
// io.ErrUnexpectedEOF: the file ended where it promised more.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// infoComment finds ICMT among the sub-chunks of a LIST/INFO body.
func infoComment(b []byte) (string, bool) {
	for len(b) >= 8 {
		id := string(b[0:4])
		size := int(binary.LittleEndian.Uint32(b[4:8]))
		b = b[8:]
		if size > len(b) {
			size = len(b)
		}
		if id == "ICMT" {
			v := b[:size]
			if i := bytes.IndexByte(v, 0); i >= 0 {
				v = v[:i]
			}
			return string(v), true
		}
		b = b[min(len(b), size+size%2):]
	}
	return "", false
}

// infoList builds a LIST/INFO chunk holding one ICMT sub-chunk, with the
// NUL terminator and padding the RIFF spec asks for.
func infoList(comment string) []byte {
	text := append([]byte(comment), 0)
	sub := len(text)
	if sub%2 == 1 {
		text = append(text, 0)
	}
	body := make([]byte, 0, 4+8+len(text))
	body = append(body, "INFO"...)
	body = append(body, "ICMT"...)
	body = binary.LittleEndian.AppendUint32(body, uint32(sub))
	body = append(body, text...)
	out := make([]byte, 0, 8+len(body))
	out = append(out, "LIST"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

// maxComment keeps an ICMT inside what ReadWAVHeader is willing to read.
const maxComment = maxInfoList - 64

// SetWAVComment returns a copy of wav with a LIST/INFO chunk holding comment
// as ICMT just before the data chunk. Every existing LIST/INFO chunk is
// dropped (so any other INFO tags go too); an empty comment only removes
// them. The input is not modified.
func SetWAVComment(wav []byte, comment string) ([]byte, error) {
	if strings.IndexByte(comment, 0) >= 0 {
		return nil, errors.New("audio: set WAV comment: comment contains a NUL byte")
	}
	if len(comment) > maxComment {
		return nil, fmt.Errorf("audio: set WAV comment: comment is %d bytes, at most %d", len(comment), maxComment)
	}
	if len(wav) < 12 || string(wav[8:12]) != "WAVE" {
		return nil, ErrNotWAV
	}
	switch string(wav[0:4]) {
	case "RIFF":
	case "RF64":
		return nil, errors.New("audio: set WAV comment: RF64 files are not supported")
	default:
		return nil, ErrNotWAV
	}
	out := make([]byte, 12, len(wav)+len(comment)+32)
	copy(out, wav[:12])
	sawData := false
	for off := 12; off < len(wav); {
		if len(wav)-off < 8 {
			// A stray trailing byte or two (a missing pad, say): keep it.
			out = append(out, wav[off:]...)
			break
		}
		id := string(wav[off : off+4])
		size := int(binary.LittleEndian.Uint32(wav[off+4 : off+8]))
		end := off + 8 + size + size%2
		if id == "data" && !sawData {
			sawData = true
			if comment != "" {
				out = append(out, infoList(comment)...)
			}
		}
		if end > len(wav) || end < off {
			// Truncated or streamed (0xFFFFFFFF) chunk: the rest belongs to it.
			if !(id == "LIST" && isInfo(wav[off+8:])) {
				out = append(out, wav[off:]...)
			}
			break
		}
		if !(id == "LIST" && isInfo(wav[off+8:end])) {
			out = append(out, wav[off:end]...)
		}
		off = end
	}
	if !sawData {
		return nil, errors.New("audio: set WAV comment: no data chunk")
	}
	if uint64(len(out)-8) > 0xFFFFFFFF {
		return nil, errors.New("audio: set WAV comment: result is larger than 4 GiB")
	}
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)-8))
	return out, nil
}

func isInfo(body []byte) bool { return len(body) >= 4 && string(body[0:4]) == "INFO" }

// WriteWAV writes samples as a mono 16-bit PCM WAV at sampleRate, with
// comment as its LIST/INFO ICMT (none when empty).
func WriteWAV(w io.Writer, sampleRate int, samples []int16, comment string) error {
	if sampleRate <= 0 {
		return fmt.Errorf("audio: write WAV: sample rate %d must be > 0", sampleRate)
	}
	if strings.IndexByte(comment, 0) >= 0 || len(comment) > maxComment {
		return errors.New("audio: write WAV: comment has a NUL byte or is too long")
	}
	dataLen := 2 * len(samples)
	var list []byte
	if comment != "" {
		list = infoList(comment)
	}
	riffLen := 4 + (8 + 16) + len(list) + 8 + dataLen
	if uint64(riffLen) > 0xFFFFFFFF {
		return errors.New("audio: write WAV: too many samples for a RIFF file")
	}
	hdr := make([]byte, 0, 44+len(list))
	hdr = append(hdr, "RIFF"...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(riffLen))
	hdr = append(hdr, "WAVEfmt "...)
	hdr = binary.LittleEndian.AppendUint32(hdr, 16)
	hdr = binary.LittleEndian.AppendUint16(hdr, 1) // PCM
	hdr = binary.LittleEndian.AppendUint16(hdr, 1) // mono
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(sampleRate))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(sampleRate*2))
	hdr = binary.LittleEndian.AppendUint16(hdr, 2)
	hdr = binary.LittleEndian.AppendUint16(hdr, 16)
	hdr = append(hdr, list...)
	hdr = append(hdr, "data"...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(dataLen))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("audio: write WAV header: %w", err)
	}
	buf := make([]byte, 0, 8<<10)
	for i, s := range samples {
		buf = binary.LittleEndian.AppendUint16(buf, uint16(s))
		if len(buf) == cap(buf) || i == len(samples)-1 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("audio: write WAV samples: %w", err)
			}
			buf = buf[:0]
		}
	}
	return nil
}
