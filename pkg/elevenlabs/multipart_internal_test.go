package elevenlabs

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingReader counts the Reads that reach it.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// After Close, the body never touches the caller's File again, even though
// the transport may keep reading after Convert has returned.
func TestUploadBodyCloseStopsFileReads(t *testing.T) {
	t.Parallel()
	file := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	f, err := (&ConvertRequest{ModelID: "m", File: file, FileSize: 1 << 20}).encode()
	require.NoError(t, err)
	b := f.body()
	buf := make([]byte, 4096)
	for file.reads == 0 {
		_, err := b.Read(buf)
		require.NoError(t, err)
	}
	require.NoError(t, b.Close())
	reads := file.reads
	_, err = b.Read(buf)
	require.ErrorIs(t, err, errBodyClosed)
	require.Equal(t, reads, file.reads)
	require.NoError(t, b.fileErr())
}

// The form is exactly head + file + tail, and size() counts all of it.
func TestFormSizeMatchesBytes(t *testing.T) {
	t.Parallel()
	f, err := (&ConvertRequest{
		ModelID: "m", File: strings.NewReader("abcdef"), FileSize: 6, Keyterms: []string{"k"},
	}).encode()
	require.NoError(t, err)
	all, err := io.ReadAll(f.body())
	require.NoError(t, err)
	require.Equal(t, f.size(), int64(len(all)))
	require.Contains(t, string(all), "\r\n\r\nabcdef\r\n--")
}
