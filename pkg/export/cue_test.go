package export_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
)

// say makes a timed transcript from "text@start-end/speaker" specs, with
// spacing entries between the words.
func say(specs ...spec) []elevenlabs.Word {
	var ws []elevenlabs.Word
	for i, s := range specs {
		if i > 0 {
			ws = append(ws, elevenlabs.Word{Text: " ", Type: "spacing", SpeakerID: s.speaker})
		}
		start, end := s.start, s.end
		typ := "word"
		if strings.HasPrefix(s.text, "(") {
			typ = "audio_event"
		}
		ws = append(ws, elevenlabs.Word{Text: s.text, Type: typ, Start: &start, End: &end, SpeakerID: s.speaker, ChannelIndex: s.channel})
	}
	return ws
}

type spec struct {
	text       string
	start, end float64
	speaker    string
	channel    *int
}

// run makes one word per text, each 0.3 s with 0.1 s between.
func run(speaker string, from float64, text string) []spec {
	var out []spec
	for _, w := range strings.Fields(text) {
		out = append(out, spec{w, from, from + 0.3, speaker, nil})
		from += 0.4
	}
	return out
}

func cues(t *testing.T, words []elevenlabs.Word, o export.Options) []export.Cue {
	t.Helper()
	cs, err := export.Cues(words, o)
	require.NoError(t, err)
	return cs
}

func texts(cs []export.Cue) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = strings.Join(c.Lines, "|")
	}
	return out
}

func TestCuesBreakAtSpeakerChange(t *testing.T) {
	t.Parallel()
	ws := say(append(run("speaker_0", 0, "Hello there."), run("speaker_1", 0.8, "Hi.")...)...)
	cs := cues(t, ws, export.Options{})
	require.Equal(t, []string{"Hello there.", "Hi."}, texts(cs))
	require.Equal(t, "Speaker 1", cs[0].Speaker)
	require.Equal(t, "Speaker 2", cs[1].Speaker)
	require.Equal(t, "speaker_1", cs[1].SpeakerID)
}

func TestCuesBreakAtPause(t *testing.T) {
	t.Parallel()
	// A gap of exactly PauseSecs breaks; a gap just under it does not.
	ws := say(spec{"one", 0, 0.5, "", nil}, spec{"two", 1.3, 1.5, "", nil}, spec{"three", 2.299, 2.5, "", nil})
	cs := cues(t, ws, export.Options{})
	require.Equal(t, []string{"one", "two three"}, texts(cs))
	require.Equal(t, []float64{0, 0.5}, []float64{cs[0].Start, cs[0].End})
	require.Equal(t, []float64{1.3, 2.5}, []float64{cs[1].Start, cs[1].End})

	cs = cues(t, ws, export.Options{PauseSecs: 0.5})
	require.Equal(t, []string{"one", "two", "three"}, texts(cs))
}

func TestCuesMaxCueSecs(t *testing.T) {
	t.Parallel()
	ws := say(run("", 0, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10")...) // 0 to 3.9 s
	cs := cues(t, ws, export.Options{MaxCueSecs: 1.5})
	require.Equal(t, []string{"w1 w2 w3 w4", "w5 w6 w7 w8", "w9 w10"}, texts(cs))
	for _, c := range cs {
		require.LessOrEqual(t, c.End-c.Start, 1.5)
	}
}

func TestCuesPreferSentenceEnd(t *testing.T) {
	t.Parallel()
	const story = "The road north was long. We left at dawn and the sky was grey"
	ws := say(run("", 0, story)...)
	cs := cues(t, ws, export.Options{MaxLineChars: 20, MaxLines: 2, MaxCueSecs: 60})
	require.Equal(t, "The road north was long.", cs[0].Text, "the cue ends at the sentence, not where the space ran out")
	for _, c := range cs {
		require.LessOrEqual(t, len(c.Lines), 2)
		for _, l := range c.Lines {
			require.LessOrEqual(t, len(l), 20)
		}
	}
	require.Equal(t, story, strings.Join(texts2(cs), " "))

	// Within a cue, the line break goes after the sentence too.
	ws = say(run("", 0, "Yes, of course. Take the second road north to the bridge")...)
	cs = cues(t, ws, export.Options{MaxCueSecs: 60})
	require.Equal(t, []string{"Yes, of course.|Take the second road north to the bridge"}, texts(cs))

	// An abbreviation is not a sentence end.
	ws = say(run("", 0, "I spoke with Dr. Amara Okafor about the night sounds of Lagos")...)
	cs = cues(t, ws, export.Options{MaxLineChars: 24, MaxLines: 2, MaxCueSecs: 60})
	require.NotEqual(t, "I spoke with Dr.", cs[0].Text)
}

func texts2(cs []export.Cue) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Text
	}
	return out
}

func TestCuesBalancedLines(t *testing.T) {
	t.Parallel()
	ws := say(run("", 0, "the quick brown fox jumps over the lazy dog again and again")...)
	cs := cues(t, ws, export.Options{MaxCueSecs: 60})
	require.Equal(t, []string{"the quick brown fox jumps over|the lazy dog again and again"}, texts(cs))
}

func TestCuesOverlongWordStandsAlone(t *testing.T) {
	t.Parallel()
	ws := say(run("", 0, "see Donaudampfschifffahrtsgesellschaft now")...)
	cs := cues(t, ws, export.Options{MaxLineChars: 20})
	require.Equal(t, []string{"see", "Donaudampfschifffahrtsgesellschaft", "now"}, texts(cs))
}

func TestCuesAudioEvents(t *testing.T) {
	t.Parallel()
	// An event without a speaker joins the turn around it, and is never
	// glued to a word even without spacing entries around it.
	start := func(v float64) *float64 { return &v }
	ws := []elevenlabs.Word{
		{Text: "Ha", Type: "word", Start: start(0), End: start(0.2), SpeakerID: "speaker_0"},
		{Text: "(laughter)", Type: "audio_event", Start: start(0.2), End: start(1)},
		{Text: "okay.", Type: "word", Start: start(1), End: start(1.3), SpeakerID: "speaker_0"},
		{Text: " ", Type: "spacing", Start: start(1.3), End: start(1.4)},
		{Text: "Sure.", Type: "word", Start: start(1.4), End: start(1.6), SpeakerID: "speaker_0"},
	}
	cs := cues(t, ws, export.Options{})
	require.Equal(t, []string{"Ha (laughter) okay. Sure."}, texts(cs))
	require.Equal(t, "Speaker 1", cs[0].Speaker)
	require.Len(t, cs[0].Words, 4)
}

func TestCuesWithoutSpacingEntries(t *testing.T) {
	t.Parallel()
	start := func(v float64) *float64 { return &v }
	ws := []elevenlabs.Word{
		{Text: "no", Type: "word", Start: start(0), End: start(0.2)},
		{Text: "spacing", Type: "word", Start: start(0.3), End: start(0.5)},
		{Text: "here.", Type: "word", Start: start(0.6), End: start(0.8)},
	}
	require.Equal(t, []string{"no spacing here."}, texts(cues(t, ws, export.Options{})))
}

func TestCuesTimes(t *testing.T) {
	t.Parallel()
	ch0, ch1 := 0, 1
	ws := say(
		spec{"blip", 1, 1, "speaker_0", nil},         // zero length
		spec{"Overlap", 1.0002, 3, "speaker_1", nil}, // starts in the same millisecond
		spec{"late", 2, 4, "speaker_0", nil},         // starts inside the previous cue
	)
	cs := cues(t, ws, export.Options{})
	require.Equal(t, []string{"blip", "Overlap", "late"}, texts(cs))
	require.Equal(t, [][2]float64{{1, 1.001}, {1.001, 2}, {2, 4}},
		[][2]float64{{cs[0].Start, cs[0].End}, {cs[1].Start, cs[1].End}, {cs[2].Start, cs[2].End}})

	// Multichannel: words come channel after channel and are interleaved
	// by time; labels name the channel.
	ws = say(
		spec{"Hello,", 0, 0.4, "", &ch0}, spec{"how", 0.5, 0.7, "", &ch0}, spec{"are", 0.8, 0.9, "", &ch0}, spec{"you?", 1, 1.2, "", &ch0},
		spec{"Hi!", 0.45, 0.6, "", &ch1}, spec{"Fine.", 1.5, 1.8, "", &ch1},
	)
	cs = cues(t, ws, export.Options{})
	require.Equal(t, []string{"Hello,", "Hi!", "how are you?", "Fine."}, texts(cs))
	require.Equal(t, []string{"Channel 1", "Channel 2", "Channel 1", "Channel 2"},
		[]string{cs[0].Speaker, cs[1].Speaker, cs[2].Speaker, cs[3].Speaker})
	require.Equal(t, 1, *cs[1].Channel)
	require.InDelta(t, 0.45, cs[1].Start, 1e-9)
	require.InDelta(t, 0.5, cs[1].End, 1e-9, "cut at the next cue's start")
}

func TestCuesUntimed(t *testing.T) {
	t.Parallel()
	ws := []elevenlabs.Word{
		{Text: "One", Type: "word", SpeakerID: "speaker_0"}, {Text: " ", Type: "spacing"},
		{Text: "two.", Type: "word", SpeakerID: "speaker_0"}, {Text: " ", Type: "spacing"},
		{Text: "Three.", Type: "word", SpeakerID: "speaker_1"},
	}
	cs := cues(t, ws, export.Options{})
	require.Equal(t, []string{"One two.", "Three."}, texts(cs))
	require.Zero(t, cs[0].Start)
	require.Zero(t, cs[0].End)
}

func TestSpeakerLabels(t *testing.T) {
	t.Parallel()
	ws := say(spec{"Yes.", 0, 0.5, "speaker_3", nil}, spec{"No.", 1, 1.5, "agent", nil})
	cs := cues(t, ws, export.Options{})
	require.Equal(t, "Speaker 4", cs[0].Speaker)
	require.Equal(t, "agent", cs[1].Speaker)

	one := say(run("speaker_0", 0, "Just me.")...)
	srt := func(o export.Options) string {
		var buf bytes.Buffer
		require.NoError(t, export.Render(&buf, export.SRT, &export.Doc{Words: one}, o))
		return buf.String()
	}
	require.Contains(t, srt(export.Options{}), "\nJust me.\n", "one speaker: no label by default")
	require.Contains(t, srt(export.Options{Speakers: export.SpeakersOn}), "\nSpeaker 1: Just me.\n")
	require.NotContains(t, srt(export.Options{Speakers: export.SpeakersOff}), "Speaker")
}

func TestCuesRejectsOptions(t *testing.T) {
	t.Parallel()
	_, err := export.Cues(nil, export.Options{MaxCueSecs: -1, MaxLines: -2, PauseSecs: -0.5})
	require.ErrorContains(t, err, "MaxCueSecs")
	require.ErrorContains(t, err, "MaxLines")
	require.ErrorContains(t, err, "PauseSecs")
	cs, err := export.Cues(nil, export.Options{})
	require.NoError(t, err)
	require.Empty(t, cs)
}
