package audio_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
)

// FuzzProber checks that no input makes the Prober panic or hang, that
// what it reports is sane, and that it does not depend on how the stream
// was cut into writes. The committed corpus (testdata/fuzz/FuzzProber)
// holds the first bytes of each fixture; the fixtures themselves are added
// whole here.
func FuzzProber(f *testing.F) {
	for _, fx := range probeFixtures {
		f.Add(readFixture(f, fx.file), uint16(fx.duration*1000), fx.file)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, name string) {
		whole := probe(name, data, len(data)+1)
		require.Equal(t, whole, probe(name, data, int(chunk%4099)+1), "depends on write sizes")
		require.False(t, math.IsNaN(whole.Duration) || math.IsInf(whole.Duration, 0))
		require.GreaterOrEqual(t, whole.Duration, 0.0)
		require.GreaterOrEqual(t, whole.Channels, 0)
		require.LessOrEqual(t, whole.Channels, 255)
		switch whole.Kind {
		case audio.Unknown:
			require.Equal(t, audio.Info{}, whole, "nothing to say about unknown content")
		case audio.Audio, audio.Video:
			require.NotEmpty(t, whole.Format)
		default:
			t.Fatalf("kind %d", whole.Kind)
		}
	})
}
