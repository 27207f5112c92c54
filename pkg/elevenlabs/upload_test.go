package elevenlabs_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// patternReader produces n bytes on the fly from a small block, so the test
// itself holds no file in memory.
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

// TestConvertStreamsWithFlatMemory is not parallel on purpose: it reads
// process-wide allocation counters, and Go runs parallel tests only after
// the serial ones, so nothing else allocates meanwhile.
func TestConvertStreamsWithFlatMemory(t *testing.T) {
	// Both sizes take well under a second, even with -race.
	for _, size := range []int64{32 << 20, 256 << 20} {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			var got, declared atomic.Int64
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				declared.Store(r.ContentLength)
				n, _ := io.Copy(io.Discard, r.Body)
				got.Store(n)
				_, _ = io.WriteString(w, `{"message":"ok","request_id":"req_big"}`)
			}))

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp, err := c.Convert(t.Context(), &elevenlabs.ConvertRequest{
				ModelID:  "scribe_v2",
				File:     newPatternReader(size),
				FileName: "big.wav",
				FileSize: size,
				Webhook:  true,
			})
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			require.Equal(t, "req_big", resp.RequestID)

			require.Equal(t, declared.Load(), got.Load(), "Content-Length must equal the bytes received")
			require.Greater(t, got.Load(), size, "the whole file plus the form went out")

			// Client and server together allocated a few buffers, not the
			// file: anything buffering it would allocate >= size.
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("uploaded %d MiB, allocated %d KiB", size>>20, allocated>>10)
			require.Less(t, allocated, uint64(8<<20))
		})
	}
}
