package emulator_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
)

// patternReader produces n bytes on the fly, so no test holds the file.
type patternReader struct {
	block []byte
	off   int
	left  int64
}

func newPatternReader(n int64) *patternReader {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i*7 + 3)
	}
	return &patternReader{block: block, left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := 0
	for n < len(b) {
		k := copy(b[n:], p.block[p.off:])
		n += k
		p.off = (p.off + k) % len(p.block)
	}
	p.left -= int64(n)
	return n, nil
}

// bigWAV is a WAV header (16 kHz mono, with comment) declaring dataBytes
// of samples, followed by those samples generated on the fly.
func bigWAV(t *testing.T, comment string, dataBytes int64) (io.Reader, int64) {
	t.Helper()
	var hdr bytes.Buffer
	require.NoError(t, audio.WriteWAV(&hdr, 16000, nil, comment))
	h := hdr.Bytes()
	binary.LittleEndian.PutUint32(h[len(h)-4:], uint32(dataBytes))
	binary.LittleEndian.PutUint32(h[4:8], uint32(int64(len(h))-8+dataBytes))
	return io.MultiReader(bytes.NewReader(h), newPatternReader(dataBytes)), int64(len(h)) + dataBytes
}

// TestStreamsLargeUploadWithFlatMemory is not parallel on purpose: it reads
// process-wide allocation counters, and parallel tests run only after the
// serial ones.
func TestStreamsLargeUploadWithFlatMemory(t *testing.T) {
	const dataBytes = 256 << 20
	const comment = "A very long recording, streamed."
	em, url := start(t, emulator.Config{})
	c := client(t, url)

	sum := sha256.New()
	r, size := bigWAV(t, comment, dataBytes)
	_, err := io.Copy(sum, r)
	require.NoError(t, err)

	file, size2 := bigWAV(t, comment, dataBytes)
	require.Equal(t, size, size2)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
		ModelID: "scribe_v2", File: file, FileName: "long.wav", FileSize: size,
	})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)

	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("streamed %d MiB, client and emulator allocated %d KiB", size>>20, allocated>>10)
	require.Less(t, allocated, uint64(16<<20), "the upload must not be buffered")

	// The header was parsed on the fly: the comment is the text and the
	// duration comes from the data chunk.
	ch := decodeChunk(t, resp.Raw)
	require.Equal(t, comment, ch.Text)
	require.InDelta(t, float64(dataBytes)/32000, ch.AudioDurationSecs, 1e-3)
	requireWellFormed(t, ch)

	calls := em.Ledger()
	require.Len(t, calls, 1)
	require.Equal(t, size, calls[0].Bytes)
	require.Equal(t, hex.EncodeToString(sum.Sum(nil)), calls[0].SHA256)
}

// The demo recordings come back with the sentences they speak.
func TestTestdataRecordingsTranscribeToTheirSentences(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"01-the-quick-brown-fox.wav":     "The quick brown fox jumps over the lazy dog.",
		"02-please-call-stella-and.wav":  "Please call Stella and ask her to bring these things with her.",
		"03-the-archive-holds-every.wav": "The archive holds every recording we made last year.",
		"04-turn-left-at-the.wav":        "Turn left at the old bridge and follow the river north.",
		"05-a-cup-of-tea.wav":            "A cup of tea tastes better on a rainy afternoon.",
		"06-our-meeting-starts-at.wav":   "Our meeting starts at nine o'clock tomorrow morning.",
	}
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "audio", "*.wav"))
	require.NoError(t, err)
	require.Len(t, paths, len(want))

	_, url := start(t, emulator.Config{})
	c := client(t, url)
	var total int
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		total += len(data)
		sentence, ok := want[filepath.Base(p)]
		require.True(t, ok, "unexpected recording %s", p)

		h, err := audio.ReadWAVHeader(bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, []int{16000, 1, 16}, []int{h.SampleRate, h.Channels, h.BitsPerSample}, p)
		require.Equal(t, sentence, emulator.TranscriptText(data))

		resp, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
			ModelID: "scribe_v2", File: bytes.NewReader(data), FileName: filepath.Base(p), FileSize: int64(len(data)),
		})
		require.NoError(t, err)
		ch := decodeChunk(t, resp.Raw)
		require.Equal(t, sentence, ch.Text, p)
		require.InDelta(t, h.Duration, ch.AudioDurationSecs, 1e-3)
		require.Greater(t, ch.AudioDurationSecs, 1.0, "real speech, not an empty file")
		requireWellFormed(t, ch)
	}
	require.Less(t, total, 1<<20, "testdata/audio stays under 1 MB")
}
