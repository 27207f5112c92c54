package audio

import "io"

// Kind says whether content is audio, video, or neither.
type Kind int

const (
	Unknown Kind = iota // not recognised as media
	Audio
	Video
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Video:
		return "video"
	}
	return "unknown"
}

// Info is what a Prober learned about a file.
type Info struct {
	Kind Kind
	// Format is a short name: wav, mp3, flac, ogg, opus, m4a, mp4, webm, …
	Format string
	// Duration in seconds; 0 when it could not be read.
	Duration float64
	// Channels; 0 when unknown.
	Channels int
}

// Prober learns a file's kind, format and duration from its bytes as they
// stream past (fed through io.MultiWriter while the file is hashed), so a
// file is read once. It keeps only a bounded amount of the stream.
//
// STUB: only WAV so far; other formats are being added.
type Prober struct {
	name string
	pw   *io.PipeWriter
	done chan Info
}

// NewProber returns a Prober for a file called name (the extension is a
// hint, never trusted over the content).
func NewProber(name string) *Prober {
	pr, pw := io.Pipe()
	p := &Prober{name: name, pw: pw, done: make(chan Info, 1)}
	go func() {
		var in Info
		if h, err := ReadWAVHeader(pr); err == nil {
			in = Info{Kind: Audio, Format: "wav", Duration: h.Duration, Channels: h.Channels}
		}
		_, _ = io.Copy(io.Discard, pr)
		p.done <- in
	}()
	return p
}

// Write never fails: a Prober that cannot make sense of the bytes reports
// Unknown.
func (p *Prober) Write(b []byte) (int, error) {
	_, _ = p.pw.Write(b)
	return len(b), nil
}

// Info returns what was learned; call it once, after the last Write.
func (p *Prober) Info() Info {
	_ = p.pw.Close()
	return <-p.done
}
