package export

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// ErrNoTimestamps means the transcript's words have no times (it was made
// with timestamps_granularity "none"), so it cannot become subtitles.
var ErrNoTimestamps = errors.New("transcript has no word timestamps (timestamps_granularity none)")

// Doc is a stored transcript to render.
type Doc struct {
	JobID           string
	RequestID       string
	TranscriptionID string
	Language        string
	// DurationSecs is the audio's duration, when known.
	DurationSecs *float64
	// Words as ElevenLabs returned them; multichannel words carry their
	// channel_index and may come channel after channel.
	Words []elevenlabs.Word
}

// FromTranscript makes a Doc of a parsed transcript; the caller adds the
// job and request ids.
func FromTranscript(t *elevenlabs.Transcript) *Doc {
	return &Doc{
		TranscriptionID: t.TranscriptionID,
		Language:        t.LanguageCode,
		DurationSecs:    t.AudioDurationSecs,
		Words:           t.Words,
	}
}

// Render writes the document in format f. Output is UTF-8 without a BOM,
// with LF line endings, and the same for the same input.
func Render(w io.Writer, f Format, d *Doc, o Options) error {
	if d == nil {
		return errors.New("export: render: no document")
	}
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	tr := prepare(d.Words)
	bw := bufio.NewWriter(w)
	var err error
	switch f {
	case SRT:
		err = renderSRT(bw, tr, o)
	case VTT:
		err = renderVTT(bw, tr, o)
	case TXT:
		err = renderTXT(bw, tr, o)
	case JSON:
		err = renderJSON(bw, d, tr, o)
	case CSV:
		err = renderCSV(bw, tr, o)
	default:
		return fmt.Errorf("export: unknown format %q", f)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("export: render %s: %w", f, err)
	}
	return nil
}

// clock formats milliseconds as HH:MM:SS<sep>mmm (hours grow past two
// digits if they must).
func clock(s float64, sep byte) string {
	t := ms(s)
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", t/3600000, t/60000%60, t/1000%60, sep, t%1000)
}

func renderSRT(w *bufio.Writer, tr *transcript, o Options) error {
	if !tr.timed {
		return ErrNoTimestamps
	}
	show := tr.showLabels(o)
	for i, c := range tr.cues(o) {
		fmt.Fprintf(w, "%d\n%s --> %s\n", i+1, clock(c.Start, ','), clock(c.End, ','))
		for k, line := range c.Lines {
			if k == 0 && show && c.Speaker != "" {
				w.WriteString(c.Speaker + ": ")
			}
			w.WriteString(srtText(line) + "\n")
		}
		w.WriteString("\n")
	}
	return nil
}

// srtText defuses "-->" in text, which SRT cannot escape and which readers
// take for a timing line.
func srtText(s string) string {
	for strings.Contains(s, "-->") {
		s = strings.ReplaceAll(s, "-->", "->")
	}
	return s
}

var vttEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func renderVTT(w *bufio.Writer, tr *transcript, o Options) error {
	if !tr.timed {
		return ErrNoTimestamps
	}
	show := tr.showLabels(o)
	w.WriteString("WEBVTT\n\n")
	for _, c := range tr.cues(o) {
		fmt.Fprintf(w, "%s --> %s\n", clock(c.Start, '.'), clock(c.End, '.'))
		for k, line := range c.Lines {
			if k == 0 && show && c.Speaker != "" {
				w.WriteString("<v " + vttEscaper.Replace(c.Speaker) + ">")
			}
			w.WriteString(vttEscaper.Replace(line) + "\n")
		}
		w.WriteString("\n")
	}
	return nil
}

// renderTXT writes one paragraph per speaker turn, blank lines between.
func renderTXT(w *bufio.Writer, tr *transcript, o Options) error {
	show := tr.showLabels(o)
	stamps := o.Timestamps && tr.timed
	for i := 0; i < len(tr.tokens); {
		j := i + 1
		for j < len(tr.tokens) && tr.tokens[j].speaker == tr.tokens[i].speaker {
			j++
		}
		if i > 0 {
			w.WriteString("\n")
		}
		if stamps {
			s := max(ms(tr.tokens[i].start), 0) / 1000
			fmt.Fprintf(w, "[%02d:%02d:%02d] ", s/3600, s/60%60, s%60)
		}
		if l := tr.labels[tr.tokens[i].speaker]; show && l != "" {
			w.WriteString(l + ": ")
		}
		w.WriteString(joinTokens(tr.tokens[i:j]) + "\n")
		i = j
	}
	return nil
}

func renderCSV(w *bufio.Writer, tr *transcript, o Options) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"start", "end", "speaker", "text"}); err != nil {
		return err
	}
	for _, c := range tr.cues(o) {
		var start, end string
		if tr.timed {
			start, end = seconds(c.Start), seconds(c.End)
		}
		if err := cw.Write([]string{start, end, c.Speaker, c.Text}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func seconds(s float64) string { return strconv.FormatFloat(float64(ms(s))/1000, 'f', 3, 64) }

// JSONVersion is the version of the json format's shape; it changes only
// when a field changes meaning or goes away.
const JSONVersion = 1

// The json format. Fields are always present (null when unknown) and in
// this order; segments are the cues, with the options that shaped them.
type (
	jsonDoc struct {
		Version         int           `json:"version"`
		JobID           string        `json:"job_id"`
		RequestID       string        `json:"request_id"`
		TranscriptionID string        `json:"transcription_id"`
		Language        string        `json:"language"`
		DurationSecs    *float64      `json:"duration_secs"`
		Channels        int           `json:"channels"`
		Timestamps      bool          `json:"timestamps"`
		Options         jsonOptions   `json:"options"`
		Speakers        []jsonSpeaker `json:"speakers"`
		Segments        []jsonSegment `json:"segments"`
	}
	jsonOptions struct {
		MaxCueSecs   float64 `json:"max_cue_secs"`
		MaxLineChars int     `json:"max_line_chars"`
		MaxLines     int     `json:"max_lines"`
		PauseSecs    float64 `json:"pause_secs"`
	}
	jsonSpeaker struct {
		Label     string `json:"label"`
		SpeakerID string `json:"speaker_id"`
		Channel   *int   `json:"channel"`
	}
	jsonSegment struct {
		Start     *float64   `json:"start"`
		End       *float64   `json:"end"`
		Speaker   string     `json:"speaker"`
		SpeakerID string     `json:"speaker_id"`
		Channel   *int       `json:"channel"`
		Text      string     `json:"text"`
		Lines     []string   `json:"lines"`
		Words     []jsonWord `json:"words"`
	}
	jsonWord struct {
		Text    string   `json:"text"`
		Type    string   `json:"type"`
		Start   *float64 `json:"start"`
		End     *float64 `json:"end"`
		Logprob float64  `json:"logprob"`
	}
)

func renderJSON(w *bufio.Writer, d *Doc, tr *transcript, o Options) error {
	channels := 1
	if tr.multi {
		seen := map[int]bool{}
		for _, t := range tr.tokens {
			seen[t.channel] = true
		}
		channels = len(seen)
	}
	out := jsonDoc{
		Version:         JSONVersion,
		JobID:           d.JobID,
		RequestID:       d.RequestID,
		TranscriptionID: d.TranscriptionID,
		Language:        d.Language,
		DurationSecs:    d.DurationSecs,
		Channels:        channels,
		Timestamps:      tr.timed,
		Options: jsonOptions{
			MaxCueSecs: o.MaxCueSecs, MaxLineChars: o.MaxLineChars,
			MaxLines: o.MaxLines, PauseSecs: o.PauseSecs,
		},
		Speakers: []jsonSpeaker{},
		Segments: []jsonSegment{},
	}
	for _, key := range tr.speakers {
		sp := jsonSpeaker{Label: tr.labels[key]}
		for _, t := range tr.tokens {
			if t.speaker == key {
				sp.SpeakerID, sp.Channel = t.word.SpeakerID, t.word.ChannelIndex
				break
			}
		}
		out.Speakers = append(out.Speakers, sp)
	}
	for _, c := range tr.cues(o) {
		seg := jsonSegment{
			Speaker: c.Speaker, SpeakerID: c.SpeakerID, Channel: c.Channel,
			Text: c.Text, Lines: c.Lines, Words: make([]jsonWord, 0, len(c.Words)),
		}
		if tr.timed {
			seg.Start, seg.End = ptr(c.Start), ptr(c.End)
		}
		for _, wd := range c.Words {
			jw := jsonWord{Text: strings.Join(strings.Fields(wd.Text), " "), Type: wd.Type, Logprob: wd.Logprob}
			if wd.Start != nil {
				jw.Start = ptr(float64(ms(*wd.Start)) / 1000)
			}
			if wd.End != nil {
				jw.End = ptr(float64(ms(*wd.End)) / 1000)
			}
			seg.Words = append(seg.Words, jw)
		}
		out.Segments = append(out.Segments, seg)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func ptr[T any](v T) *T { return &v }
