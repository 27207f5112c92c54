package audio_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
)

// zeros reads n zero bytes, made on the fly.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// cycle reads pattern over and over, n bytes in all.
type cycle struct {
	pattern []byte
	off     int
	n       int64
}

func (c *cycle) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.n)]
	for i := 0; i < len(p); {
		k := copy(p[i:], c.pattern[c.off:])
		i += k
		c.off = (c.off + k) % len(c.pattern)
	}
	c.n -= int64(len(p))
	return len(p), nil
}

func boxHdr(typ string, size uint64) []byte {
	if size > 0xFFFFFFFF {
		b := binary.BigEndian.AppendUint32(nil, 1)
		b = append(b, typ...)
		return binary.BigEndian.AppendUint64(b, size)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(size)), typ...)
}

func box(typ string, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(boxHdr(typ, uint64(8+len(b))), b...)
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// bigM4A is a ten-hour M4A laid out as a streaming encoder writes it: a
// 64-bit mdat of mdatSize bytes first, then a moov whose sample size
// table alone is stszEntries*4 bytes.
func bigM4A(mdatSize, stszEntries int64) io.Reader {
	ftyp := box("ftyp", []byte("M4A "), u32s(0), []byte("M4A isom"))
	mvhd := box("mvhd", u32s(0, 0, 0, 1000, 36_000_000), make([]byte, 80))
	tkhd := box("tkhd", u32s(0, 0, 0, 1), make([]byte, 72))
	mdhd := box("mdhd", u32s(0, 0, 0, 44100, 1_587_600_000), make([]byte, 4))
	hdlr := box("hdlr", u32s(0, 0), []byte("soun"), make([]byte, 13))
	entry := box("mp4a", make([]byte, 6), []byte{0, 1}, make([]byte, 8), []byte{0, 2, 0, 16}, make([]byte, 8))
	stsd := box("stsd", u32s(0, 1), entry)
	stszSize := uint64(8 + 12 + 4*stszEntries)
	stbl := uint64(8+len(stsd)) + stszSize
	minf := 8 + stbl
	mdia := uint64(8+len(mdhd)+len(hdlr)) + minf
	trak := uint64(8+len(tkhd)) + mdia
	moov := uint64(8+len(mvhd)) + trak
	moovHead := bytes.Join([][]byte{
		boxHdr("moov", moov), mvhd, boxHdr("trak", trak), tkhd, boxHdr("mdia", mdia), mdhd, hdlr,
		boxHdr("minf", minf), boxHdr("stbl", stbl), stsd, boxHdr("stsz", stszSize), u32s(0, 0, uint32(stszEntries)),
	}, nil)
	return io.MultiReader(
		bytes.NewReader(ftyp),
		// a 64-bit size, as writers use for mdat when they cannot know it
		bytes.NewReader(binary.BigEndian.AppendUint64(append(u32s(1), "mdat"...), uint64(mdatSize)+16)),
		&zeros{n: mdatSize},
		bytes.NewReader(moovHead),
		&zeros{n: 4 * stszEntries},
	)
}

func TestProberMemory(t *testing.T) {
	// Not parallel: TotalAlloc is process-wide.
	const size = 200 << 20
	mp3Frame := append([]byte{0xFF, 0xFB, 0xE8, 0xC0}, make([]byte, 1440-4)...) // MPEG-1 L3 320k 32 kHz mono
	const mp3Frames = (size + 1439) / 1440
	wavHdr := bytes.Join([][]byte{
		[]byte("RIFF"), {0xFF, 0xFF, 0xFF, 0xFF}, []byte("WAVEfmt "),
		{16, 0, 0, 0, 1, 0, 1, 0}, binary.LittleEndian.AppendUint32(nil, 16000),
		binary.LittleEndian.AppendUint32(nil, 32000), {2, 0, 16, 0},
		[]byte("data"), {0xFF, 0xFF, 0xFF, 0xFF},
	}, nil)

	cases := []struct {
		name string
		r    io.Reader
		want audio.Info
	}{
		{
			"ten-hours.m4a", bigM4A(160<<20, 12<<20), // moov of 48 MiB at the end
			audio.Info{Kind: audio.Audio, Format: "m4a", Duration: 36000, Channels: 2},
		},
		{
			"frames.mp3", &cycle{pattern: mp3Frame, n: mp3Frames * 1440},
			audio.Info{Kind: audio.Audio, Format: "mp3", Duration: mp3Frames * 1152 / 32000.0, Channels: 1},
		},
		{
			"streamed.wav", io.MultiReader(bytes.NewReader(wavHdr), &zeros{n: size}),
			audio.Info{Kind: audio.Audio, Format: "wav", Duration: size / 32000.0, Channels: 1},
		},
	}
	buf := make([]byte, 32<<10)
	for _, c := range cases {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := audio.NewProber(c.name)
		n, err := io.CopyBuffer(p, c.r, buf)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, int64(size), c.name)
		in := p.Info()
		runtime.ReadMemStats(&after)
		require.InDelta(t, c.want.Duration, in.Duration, 1e-6, c.name)
		in.Duration = c.want.Duration
		require.Equal(t, c.want, in, c.name)
		grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes probed, heap grew %d bytes, %d allocated", c.name, n, grew, allocated)
		require.Less(t, grew, int64(16<<20), "%s: heap grew %d bytes", c.name, grew)
		require.Less(t, allocated, uint64(16<<20), "%s: allocated %d bytes", c.name, allocated)
		runtime.KeepAlive(p)
	}
}

// BenchmarkProber measures throughput on a frame-dense stream (the worst
// case: every 104 bytes a header to read) and on a container whose body is
// skipped unseen.
func BenchmarkProber(b *testing.B) {
	frame := append([]byte{0xFF, 0xF3, 0x40, 0xC0}, make([]byte, 100)...) // MPEG-2 L3 32k 22050 Hz mono: 104 bytes
	wavHdr := []byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff")
	const size = 64 << 20
	for _, c := range []struct {
		name string
		r    func() io.Reader
	}{
		{"mp3-frames", func() io.Reader { return &cycle{pattern: frame, n: size / 104 * 104} }},
		{"wav", func() io.Reader { return io.MultiReader(bytes.NewReader(wavHdr), &zeros{n: size}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			b.SetBytes(size)
			for b.Loop() {
				p := audio.NewProber(c.name)
				if _, err := io.CopyBuffer(p, c.r(), buf); err != nil {
					b.Fatal(err)
				}
				if p.Info().Duration == 0 {
					b.Fatal("no duration")
				}
			}
		})
	}
}
