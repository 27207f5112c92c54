package intake_test

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/queue"
)

// natsChildEnv makes the test binary a NATS server (see TestMain), so a
// test can measure this process's heap without the server's in it.
const natsChildEnv = "INTAKE_TEST_NATS_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(natsChildEnv); dir != "" {
		os.Exit(runNATSChild(dir))
	}
	os.Exit(m.Run())
}

// runNATSChild serves until stdin closes (the parent test ended or died).
func runNATSChild(dir string) int {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, MaxPayload: 8 << 20,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats child: not ready")
		return 1
	}
	fmt.Println(s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// childQueue starts a NATS server in a child process and opens a queue on it.
func childQueue(t *testing.T) *queue.Queue {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "nats child did not print its URL")
	nc, err := queue.Connect(string(bytes.TrimSpace([]byte(line))), t.Name(), nil)
	require.NoError(t, err)
	q, err := queue.Open(context.Background(), nc, queue.Config{})
	require.NoError(t, err)
	t.Cleanup(q.Close)
	return q
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wav returns a mono 16 kHz WAV of secs seconds whose bytes depend on seed.
func wav(t testing.TB, secs float64, seed int) []byte {
	t.Helper()
	return wavAt(t, 16000, secs, seed)
}

// wavAt is wav at a sample rate: a low rate makes long audio small.
func wavAt(t testing.TB, rate int, secs float64, seed int) []byte {
	t.Helper()
	samples := make([]int16, int(float64(rate)*secs))
	for i := range samples {
		samples[i] = int16((i*7 + seed*131) % 2000)
	}
	var b bytes.Buffer
	require.NoError(t, audio.WriteWAV(&b, rate, samples, fmt.Sprintf("seed %d", seed)))
	return b.Bytes()
}

// wavChannels is a 16-bit PCM WAV with several channels (WriteWAV is mono).
func wavChannels(channels, rate int, secs float64) []byte {
	data := int(float64(rate)*secs) * channels * 2
	return append(wavHeader(channels, rate, data), bytes.Repeat([]byte{1, 0}, data/2)...)
}

// wavHeader is the 44-byte header of a PCM WAV with data bytes of samples.
func wavHeader(channels, rate, data int) []byte {
	h := []byte("RIFF")
	h = binary.LittleEndian.AppendUint32(h, uint32(36+data))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*channels*2))
	h = binary.LittleEndian.AppendUint16(h, uint16(channels*2))
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, uint32(data))
}

var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

type entry struct {
	name string
	data []byte
	dir  bool
	link string
}

func writeZip(t testing.TB, path string, entries []entry) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for _, e := range entries {
		if e.dir {
			_, err := zw.Create(e.name + "/")
			require.NoError(t, err)
			continue
		}
		w, err := zw.Create(e.name)
		require.NoError(t, err)
		_, err = w.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	return path
}

func writeTarGz(t testing.TB, path string, entries []entry) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		switch {
		case e.dir:
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: e.name + "/", Typeflag: tar.TypeDir, Mode: 0o755}))
		case e.link != "":
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeSymlink, Linkname: e.link}))
		default:
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))}))
			_, err := tw.Write(e.data)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.NoError(t, f.Close())
	return path
}

// jobs returns every message on JOBS, in order.
func jobs(t *testing.T, q *queue.Queue) []*event.Job {
	t.Helper()
	var out []*event.Job
	for _, data := range streamMessages(t, q, event.StreamJobs) {
		j, err := event.DecodeJob(data)
		require.NoError(t, err)
		out = append(out, j)
	}
	return out
}

// queuedEvents returns every queued event on EVENTS, in order.
func queuedEvents(t *testing.T, q *queue.Queue) []*event.Event {
	t.Helper()
	var out []*event.Event
	for _, data := range streamMessages(t, q, event.StreamEvents) {
		e, err := event.Decode(data)
		require.NoError(t, err)
		if e.Type == event.TypeQueued {
			out = append(out, e)
		}
	}
	return out
}

func streamMessages(t *testing.T, q *queue.Queue, stream string) [][]byte {
	t.Helper()
	ctx := context.Background()
	st, err := q.JS.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out [][]byte
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		out = append(out, m.Data)
	}
	return out
}

func jobByID(t *testing.T, q *queue.Queue, id string) *event.Job {
	t.Helper()
	for _, j := range jobs(t, q) {
		if j.JobID == id {
			return j
		}
	}
	t.Fatalf("job %s not on JOBS", id)
	return nil
}

func object(t *testing.T, q *queue.Queue, name string) []byte {
	t.Helper()
	b, err := q.Audio.GetBytes(context.Background(), name)
	require.NoError(t, err)
	return b
}

// byWhere indexes results by Where(), failing on a repeat.
func byWhere(t *testing.T, res []intake.Result) map[string]intake.Result {
	t.Helper()
	m := map[string]intake.Result{}
	for _, r := range res {
		_, dup := m[r.Where()]
		require.False(t, dup, "two results for %s", r.Where())
		m[r.Where()] = r
	}
	return m
}

func statuses(res []intake.Result) map[intake.Status]int {
	m := map[intake.Status]int{}
	for _, r := range res {
		m[r.Status]++
	}
	return m
}
