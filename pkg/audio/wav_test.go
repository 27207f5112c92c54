package audio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
)

func wavBytes(t *testing.T, rate int, n int, comment string) []byte {
	t.Helper()
	samples := make([]int16, n)
	for i := range samples {
		samples[i] = int16(i*37%2000 - 1000)
	}
	var buf bytes.Buffer
	require.NoError(t, audio.WriteWAV(&buf, rate, samples, comment))
	return buf.Bytes()
}

// chunk builds one RIFF chunk with its pad byte.
func chunk(id string, body []byte) []byte {
	out := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

func fmtChunk(rate, channels, bits int) []byte {
	b := binary.LittleEndian.AppendUint16(nil, 1)
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	return chunk("fmt ", b)
}

func TestWriteAndReadWAVHeader(t *testing.T) {
	t.Parallel()
	wav := wavBytes(t, 16000, 24000, "Hello there.")
	h, err := audio.ReadWAVHeader(bytes.NewReader(wav))
	require.NoError(t, err)
	require.Equal(t, 16000, h.SampleRate)
	require.Equal(t, 1, h.Channels)
	require.Equal(t, 16, h.BitsPerSample)
	require.Equal(t, 1, h.Format)
	require.Equal(t, int64(48000), h.DataBytes)
	require.InDelta(t, 1.5, h.Duration, 1e-9)
	require.Equal(t, "Hello there.", h.Comment)
	require.Equal(t, int64(len(wav))-48000, h.DataOffset)
}

func TestReadWAVHeaderStopsAtData(t *testing.T) {
	t.Parallel()
	wav := wavBytes(t, 8000, 100, "")
	r := bytes.NewReader(wav)
	h, err := audio.ReadWAVHeader(r)
	require.NoError(t, err)
	require.Empty(t, h.Comment)
	require.Equal(t, int64(44), h.DataOffset)
	// Exactly the samples are left to read.
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, wav[44:], rest)
}

// A header as other tools write it: an unknown chunk and a LIST/INFO with
// several tags (odd lengths, so pad bytes matter) before the data.
func TestReadWAVHeaderListBeforeData(t *testing.T) {
	t.Parallel()
	info := []byte("INFO")
	info = append(info, chunk("ISFT", []byte("Lavf60\x00"))...) // 7 bytes: padded
	info = append(info, chunk("ICMT", []byte("The quick brown fox.\x00"))...)
	info = append(info, chunk("INAM", []byte("x\x00"))...)
	data := make([]byte, 44100*2*2) // 1 s of 16-bit stereo at 44.1 kHz
	wav := riff(fmtChunk(44100, 2, 16), chunk("JUNK", []byte{1, 2, 3}), chunk("LIST", info), chunk("data", data))

	h, err := audio.ReadWAVHeader(bytes.NewReader(wav))
	require.NoError(t, err)
	require.Equal(t, "The quick brown fox.", h.Comment)
	require.Equal(t, 44100, h.SampleRate)
	require.Equal(t, 2, h.Channels)
	require.InDelta(t, 1.0, h.Duration, 1e-9)
	require.Equal(t, int64(len(wav)-len(data)), h.DataOffset)
}

func TestReadWAVHeaderIgnoresListAfterData(t *testing.T) {
	t.Parallel()
	info := append([]byte("INFO"), chunk("ICMT", []byte("late\x00"))...)
	wav := riff(fmtChunk(16000, 1, 16), chunk("data", make([]byte, 320)), chunk("LIST", info))
	h, err := audio.ReadWAVHeader(bytes.NewReader(wav))
	require.NoError(t, err)
	require.Empty(t, h.Comment)
	require.InDelta(t, 0.01, h.Duration, 1e-9)
}

func TestReadWAVHeaderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     []byte
		notWAV bool
	}{
		{name: "Empty", in: nil, notWAV: true},
		{name: "Short", in: []byte("RIFF"), notWAV: true},
		{name: "MP3", in: []byte("ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), notWAV: true},
		{name: "RIFFNotWAVE", in: []byte("RIFF\x04\x00\x00\x00AVI LIST"), notWAV: true},
		{name: "NoData", in: riff(fmtChunk(16000, 1, 16))},
		{name: "DataBeforeFmt", in: riff(chunk("data", []byte{0, 0}), fmtChunk(16000, 1, 16))},
		{name: "TruncatedFmt", in: riff(fmtChunk(16000, 1, 16))[:20]},
		{name: "TinyFmt", in: riff(chunk("fmt ", []byte{1, 0}), chunk("data", nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := audio.ReadWAVHeader(bytes.NewReader(tt.in))
			require.Error(t, err)
			require.Equal(t, tt.notWAV, errors.Is(err, audio.ErrNotWAV), "%v", err)
		})
	}
}

func TestSetWAVComment(t *testing.T) {
	t.Parallel()
	orig := wavBytes(t, 16000, 1600, "")
	withComment, err := audio.SetWAVComment(orig, "A sentence, spoken.")
	require.NoError(t, err)
	h, err := audio.ReadWAVHeader(bytes.NewReader(withComment))
	require.NoError(t, err)
	require.Equal(t, "A sentence, spoken.", h.Comment)
	require.Equal(t, int64(3200), h.DataBytes)
	require.Equal(t, orig[44:], withComment[h.DataOffset:], "samples unchanged")
	require.Equal(t, uint32(len(withComment)-8), binary.LittleEndian.Uint32(withComment[4:8]))

	// Replacing keeps exactly one LIST/INFO.
	replaced, err := audio.SetWAVComment(withComment, "Another.")
	require.NoError(t, err)
	h, err = audio.ReadWAVHeader(bytes.NewReader(replaced))
	require.NoError(t, err)
	require.Equal(t, "Another.", h.Comment)
	require.Equal(t, 1, bytes.Count(replaced, []byte("LIST")))

	// An empty comment removes it, giving back the original bytes.
	removed, err := audio.SetWAVComment(replaced, "")
	require.NoError(t, err)
	require.Equal(t, orig, removed)
}

func TestSetWAVCommentMovesListBeforeData(t *testing.T) {
	t.Parallel()
	info := append([]byte("INFO"), chunk("ICMT", []byte("old\x00"))...)
	wav := riff(fmtChunk(16000, 1, 16), chunk("data", make([]byte, 32)), chunk("LIST", info))
	out, err := audio.SetWAVComment(wav, "new")
	require.NoError(t, err)
	h, err := audio.ReadWAVHeader(bytes.NewReader(out))
	require.NoError(t, err)
	require.Equal(t, "new", h.Comment)
	require.Equal(t, 1, bytes.Count(out, []byte("LIST")))
	require.NotContains(t, string(out), "old")
}

func TestSetWAVCommentRejects(t *testing.T) {
	t.Parallel()
	_, err := audio.SetWAVComment([]byte("not a wav at all"), "x")
	require.ErrorIs(t, err, audio.ErrNotWAV)
	_, err = audio.SetWAVComment(riff(fmtChunk(16000, 1, 16)), "x")
	require.ErrorContains(t, err, "no data chunk")
	_, err = audio.SetWAVComment(wavBytes(t, 16000, 10, ""), "a\x00b")
	require.ErrorContains(t, err, "NUL")
	_, err = audio.SetWAVComment(wavBytes(t, 16000, 10, ""), strings.Repeat("x", 70<<10))
	require.ErrorContains(t, err, "at most")
}

func TestIsMediaExt(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a.wav", "B.MP3", "dir/c.m4a", "x.FLAC", "y.ogg", "z.opus", "v.webm",
		"a.aac", "a.wma", "a.aiff", "a.mp4", "a.MOV", "a.mkv", "a.avi"} {
		require.True(t, audio.IsMediaExt(name), name)
	}
	for _, name := range []string{"notes.txt", "wav", "archive.zip", "a.wav.bak", "", "mp3."} {
		require.False(t, audio.IsMediaExt(name), name)
	}
}
