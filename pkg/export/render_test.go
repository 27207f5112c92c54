package export_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func loadDoc(t *testing.T, name string) *export.Doc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	tr, err := elevenlabs.ParseTranscript(raw)
	require.NoError(t, err)
	d := export.FromTranscript(tr)
	d.JobID, d.RequestID = "job_"+name, "req_"+name
	return d
}

func render(t *testing.T, f export.Format, d *export.Doc, o export.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, export.Render(&buf, f, d, o))
	return buf.Bytes()
}

// checkLimits checks displayed lines against the options: at most MaxLines
// lines of at most MaxLineChars runes (a speaker label included), except a
// cue of one word too long for a line.
func checkLimits(t *testing.T, cues []subCue, o export.Options, what string) {
	t.Helper()
	maxLines, maxChars := o.MaxLines, o.MaxLineChars
	if maxLines == 0 {
		maxLines = export.DefaultMaxLines
	}
	if maxChars == 0 {
		maxChars = export.DefaultMaxLineChars
	}
	for i, c := range cues {
		require.LessOrEqual(t, len(c.lines), maxLines, "%s cue %d: %q", what, i+1, c.lines)
		for k, l := range c.lines {
			n := utf8.RuneCountInString(l)
			if k == 0 && c.voice != "" {
				n += utf8.RuneCountInString(c.voice) + 2
			}
			if n > maxChars {
				text := l
				if _, rest, ok := strings.Cut(l, ": "); ok && c.voice == "" {
					text = rest
				}
				require.True(t, len(c.lines) == 1 && !strings.Contains(text, " "),
					"%s cue %d: line %q has %d runes, limit %d", what, i+1, l, n, maxChars)
			}
		}
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	narrow := export.Options{MaxLineChars: 30, MaxLines: 1, MaxCueSecs: 3}
	cases := []struct {
		fixture, variant string
		format           export.Format
		opts             export.Options
	}{
		{"diarized", "", export.SRT, export.Options{}},
		{"diarized", "", export.VTT, export.Options{}},
		{"diarized", "", export.TXT, export.Options{}},
		{"diarized", "", export.JSON, export.Options{}},
		{"diarized", "", export.CSV, export.Options{}},
		{"diarized", "timestamps", export.TXT, export.Options{Timestamps: true}},
		{"diarized", "narrow", export.SRT, narrow},
		{"diarized", "narrow", export.VTT, narrow},
		{"diarized", "nolabels", export.SRT, export.Options{Speakers: export.SpeakersOff}},
		{"multichannel", "", export.SRT, export.Options{}},
		{"multichannel", "", export.VTT, export.Options{}},
		{"multichannel", "", export.TXT, export.Options{}},
		{"multichannel", "", export.JSON, export.Options{}},
		{"multichannel", "", export.CSV, export.Options{}},
		{"multichannel", "timestamps", export.TXT, export.Options{Timestamps: true}},
	}
	for _, tc := range cases {
		name := tc.fixture
		if tc.variant != "" {
			name += "." + tc.variant
		}
		name += "." + tc.format.Extension()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := render(t, tc.format, loadDoc(t, tc.fixture), tc.opts)
			require.Equal(t, got, render(t, tc.format, loadDoc(t, tc.fixture), tc.opts), "output must be deterministic")
			path := filepath.Join("testdata", "golden", name)
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./pkg/export -update to create it")
			require.Equal(t, string(want), string(got))

			// The golden files themselves must be valid, whatever -update wrote.
			require.NoError(t, checkText(want))
			switch tc.format {
			case export.SRT:
				cues, err := parseSRT(want)
				require.NoError(t, err)
				checkLimits(t, cues, tc.opts, name)
			case export.VTT:
				cues, err := parseVTT(want)
				require.NoError(t, err)
				checkLimits(t, cues, tc.opts, name)
			case export.JSON:
				require.True(t, json.Valid(want))
			case export.CSV:
				rows, err := csv.NewReader(bytes.NewReader(want)).ReadAll()
				require.NoError(t, err)
				require.Equal(t, []string{"start", "end", "speaker", "text"}, rows[0])
			}
		})
	}
}

// firstText is a cue's displayed text without a speaker label.
func firstText(c subCue) string {
	s := strings.Join(c.lines, " ")
	if c.voice == "" {
		if _, rest, ok := strings.Cut(s, ": "); ok && strings.HasPrefix(s, "Speaker ") || strings.HasPrefix(s, "Channel ") {
			return rest
		}
	}
	return s
}

func TestDiarizedSubtitles(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, "diarized")
	srt, err := parseSRT(render(t, export.SRT, d, export.Options{}))
	require.NoError(t, err)
	vtt, err := parseVTT(render(t, export.VTT, d, export.Options{}))
	require.NoError(t, err)
	require.Len(t, vtt, len(srt))

	var texts []string
	for i, c := range vtt {
		require.Equal(t, srt[i].start, c.start)
		require.Equal(t, srt[i].end, c.end)
		require.Contains(t, []string{"Speaker 1", "Speaker 2"}, c.voice, "two speakers: labels on by default")
		require.True(t, strings.HasPrefix(srt[i].lines[0], c.voice+": "))
		texts = append(texts, firstText(c))
	}
	all := strings.Join(texts, " ")
	require.Contains(t, all, "(laughter)")
	require.Contains(t, all, "sound & the smell", "VTT text unescapes to the original")
	require.Contains(t, all, "ratio was <3 dB")

	// The monologue (Speaker 2, from "It started" to "the time.") is split
	// into several cues, none longer than 7 s, and the 1.6 s pause before
	// "When I moved" starts a cue.
	var mono []subCue
	pauseCue := -1
	for i, c := range vtt {
		if c.voice == "Speaker 2" && c.start > vtt[0].start && !strings.HasPrefix(firstText(c), "Thanks") && !strings.HasPrefix(firstText(c), "(laughter)") {
			mono = append(mono, c)
		}
		if strings.HasPrefix(firstText(c), "When I moved") {
			pauseCue = i
		}
	}
	require.GreaterOrEqual(t, len(mono), 4)
	for _, c := range mono {
		require.LessOrEqual(t, c.end-c.start, int64(7000))
	}
	require.Positive(t, pauseCue)
	require.GreaterOrEqual(t, vtt[pauseCue].start-vtt[pauseCue-1].end, int64(1500))
}

func TestMultichannelSubtitles(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, "multichannel")
	vtt, err := parseVTT(render(t, export.VTT, d, export.Options{}))
	require.NoError(t, err)
	var order []string
	for _, c := range vtt {
		order = append(order, c.voice+"|"+firstText(c))
	}
	// The caller's "Mm-hmm." overlaps the agent's question: it comes between
	// the agent's cues, in time order.
	joined := strings.Join(order, "\n")
	require.Regexp(t, `(?s)Channel 1\|[^\n]*date of birth[^\n]*\nChannel 2\|Mm-hmm\.\nChannel 1\|`, joined)
	require.Contains(t, joined, "Channel 2|It's the third of May")

	txt := string(render(t, export.TXT, d, export.Options{Speakers: export.SpeakersOff}))
	require.NotContains(t, txt, "Channel")
	require.True(t, strings.HasPrefix(txt, "Thank you for calling Riverside Clinic"))
}

func TestUntimed(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, "diarized")
	for i := range d.Words {
		d.Words[i].Start, d.Words[i].End = nil, nil
		d.Words[i].Characters = nil
	}
	for _, f := range []export.Format{export.SRT, export.VTT} {
		err := export.Render(&bytes.Buffer{}, f, d, export.Options{})
		require.ErrorIs(t, err, export.ErrNoTimestamps, f)
	}
	txt := string(render(t, export.TXT, d, export.Options{Timestamps: true}))
	require.True(t, strings.HasPrefix(txt, "Speaker 1: Welcome back to Night Signals."), txt)
	require.NotContains(t, txt, "[00:")

	var doc struct {
		Timestamps bool `json:"timestamps"`
		Segments   []struct {
			Start *float64 `json:"start"`
			Text  string   `json:"text"`
		} `json:"segments"`
	}
	require.NoError(t, json.Unmarshal(render(t, export.JSON, d, export.Options{}), &doc))
	require.False(t, doc.Timestamps)
	require.NotEmpty(t, doc.Segments)
	for _, s := range doc.Segments {
		require.Nil(t, s.Start)
	}

	rows, err := csv.NewReader(bytes.NewReader(render(t, export.CSV, d, export.Options{}))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, len(doc.Segments)+1)
	require.Equal(t, []string{"", "", "Speaker 1"}, rows[1][:3])
}

func TestRenderRejects(t *testing.T) {
	t.Parallel()
	d := loadDoc(t, "diarized")
	err := export.Render(&bytes.Buffer{}, export.Format("docx"), d, export.Options{})
	require.ErrorContains(t, err, `unknown format "docx"`)
	err = export.Render(&bytes.Buffer{}, export.SRT, d, export.Options{MaxLineChars: -1, Speakers: "sometimes"})
	require.ErrorContains(t, err, "MaxLineChars")
	require.ErrorContains(t, err, "Speakers")

	f, err := export.ParseFormat(" .VTT")
	require.NoError(t, err)
	require.Equal(t, export.VTT, f)
	_, err = export.ParseFormat("docx")
	require.Error(t, err)
}

// randomWords makes a messy transcript: several speakers or channels,
// zero-length and overlong words, overlaps, long pauses, audio events with
// and without a speaker, text needing escapes, sometimes no timestamps.
func randomWords(r *rand.Rand, timed bool) []elevenlabs.Word {
	vocab := []string{"the", "a", "cat", "sat.", "on", "mat,", "and", "then?", "left!", "R&D", "<b>bold</b>", "-->",
		"très", "naïve", "Donaudampfschifffahrtsgesellschaft", "x", "well;", "supercalifragilisticexpialidocious-and-then-some-more-words",
		"It's", "okay.", "0", "12", "“quoted.”", "&amp;"}
	channels := 1
	if r.IntN(4) == 0 {
		channels = 2 + r.IntN(2)
	}
	speakers := 1 + r.IntN(3)
	var words []elevenlabs.Word
	for ch := range channels {
		t := r.Float64() * 3
		n := r.IntN(120)
		spk := r.IntN(speakers)
		for i := range n {
			var w elevenlabs.Word
			switch {
			case r.IntN(15) == 0:
				w = elevenlabs.Word{Text: "(laughter)", Type: "audio_event"}
			default:
				w = elevenlabs.Word{Text: vocab[r.IntN(len(vocab))], Type: "word"}
			}
			if r.IntN(8) == 0 {
				spk = r.IntN(speakers)
			}
			if channels == 1 && (w.Type == "word" || r.IntN(2) == 0) {
				w.SpeakerID = fmt.Sprintf("speaker_%d", spk)
			}
			var dur float64
			switch k := r.IntN(20); {
			case k == 0:
				dur = 0
			case k == 1:
				dur = 8 + r.Float64()*4
			default:
				dur = 0.05 + r.Float64()*0.8
			}
			switch k := r.IntN(12); {
			case k == 0:
				t += 0.5 + r.Float64()*3
			case k == 1 && i > 0:
				t -= r.Float64() * 0.3
			default:
				t += r.Float64() * 0.2
			}
			start, end := t, t+dur
			t = end
			if timed {
				w.Start, w.End = &start, &end
			}
			if channels > 1 {
				c := ch
				w.ChannelIndex = &c
			}
			if i > 0 && r.IntN(10) != 0 {
				sp := elevenlabs.Word{Text: " ", Type: "spacing", SpeakerID: w.SpeakerID, ChannelIndex: w.ChannelIndex}
				if timed {
					sp.Start, sp.End = &start, &start
				}
				words = append(words, sp)
			}
			words = append(words, w)
		}
	}
	return words
}

func randomOptions(r *rand.Rand) export.Options {
	return export.Options{
		MaxCueSecs:   []float64{0, 1, 2.5, 5, 10}[r.IntN(5)],
		MaxLineChars: []int{0, 8, 16, 32, 60}[r.IntN(5)],
		MaxLines:     r.IntN(4),
		PauseSecs:    []float64{0, 0.2, 1, 2}[r.IntN(4)],
		Speakers:     []export.SpeakerLabels{"", export.SpeakersAuto, export.SpeakersOn, export.SpeakersOff}[r.IntN(4)],
		Timestamps:   r.IntN(2) == 0,
	}
}

func TestRenderRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(4, 10))
	for i := range 300 {
		timed := r.IntN(20) != 0
		words := randomWords(r, timed)
		o := randomOptions(r)
		d := &export.Doc{JobID: "j", Words: words}
		what := fmt.Sprintf("case %d (%+v, %d words)", i, o, len(words))

		cues, err := export.Cues(words, o)
		require.NoError(t, err, what)
		for _, f := range []export.Format{export.TXT, export.JSON, export.CSV} {
			var buf bytes.Buffer
			require.NoError(t, export.Render(&buf, f, d, o), what)
			require.NoError(t, checkText(buf.Bytes()), what)
			switch f {
			case export.JSON:
				require.True(t, json.Valid(buf.Bytes()), what)
			case export.CSV:
				rows, err := csv.NewReader(&buf).ReadAll()
				require.NoError(t, err, what)
				require.Len(t, rows, len(cues)+1, what)
			}
		}
		if !timed && len(words) > 0 {
			require.ErrorIs(t, export.Render(&bytes.Buffer{}, export.SRT, d, o), export.ErrNoTimestamps, what)
			require.ErrorIs(t, export.Render(&bytes.Buffer{}, export.VTT, d, o), export.ErrNoTimestamps, what)
			continue
		}

		srt, err := parseSRT(render(t, export.SRT, d, o))
		require.NoError(t, err, what)
		vtt, err := parseVTT(render(t, export.VTT, d, o))
		require.NoError(t, err, what)
		require.Len(t, srt, len(cues), what)
		require.Len(t, vtt, len(cues), what)
		checkLimits(t, srt, o, what+" srt")
		checkLimits(t, vtt, o, what+" vtt")
		checkCues(t, words, cues, o, what)
		for k := range cues {
			require.Equal(t, strings.Join(vtt[k].lines, "\n"), strings.Join(cues[k].Lines, "\n"), what)
		}
	}
}

// checkCues checks what the subtitles cannot show: no word lost, one
// speaker per cue, no pause inside a cue, no cue too long.
func checkCues(t *testing.T, words []elevenlabs.Word, cues []export.Cue, o export.Options, what string) {
	t.Helper()
	maxSecs, pause := o.MaxCueSecs, o.PauseSecs
	if maxSecs == 0 {
		maxSecs = export.DefaultMaxCueSecs
	}
	if pause == 0 {
		pause = export.DefaultPauseSecs
	}
	want := 0
	for _, w := range words {
		if w.Type != "spacing" {
			want++
		}
	}
	got := 0
	for k, c := range cues {
		got += len(c.Words)
		require.NotEmpty(t, c.Words, what)
		require.NotEmpty(t, c.Lines, what)
		if len(c.Words) > 1 {
			require.LessOrEqual(t, c.End-c.Start, maxSecs+1e-9, "%s cue %d", what, k+1)
		}
		speaker := ""
		for j, w := range c.Words {
			if w.SpeakerID != "" {
				if speaker == "" {
					speaker = w.SpeakerID
				}
				require.Equal(t, speaker, w.SpeakerID, "%s cue %d mixes speakers", what, k+1)
			}
			require.Equal(t, c.Words[0].ChannelIndex == nil, w.ChannelIndex == nil, what)
			if w.ChannelIndex != nil {
				require.Equal(t, *c.Words[0].ChannelIndex, *w.ChannelIndex, "%s cue %d mixes channels", what, k+1)
			}
			if j > 0 {
				gap := *w.Start - *c.Words[j-1].End
				require.Less(t, gap, pause+0.001, "%s cue %d holds a pause", what, k+1)
			}
		}
	}
	require.Equal(t, want, got, "%s: every word in exactly one cue", what)
}
