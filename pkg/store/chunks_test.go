package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// script builds ElevenLabs words: each entry is "speaker:text@start-end"
// for a word, or a bare string for spacing.
func script(entries ...string) []elevenlabs.Word {
	var out []elevenlabs.Word
	for _, e := range entries {
		spk, rest, ok := strings.Cut(e, ":")
		if !ok {
			out = append(out, elevenlabs.Word{Text: e, Type: "spacing"})
			continue
		}
		text, times, _ := strings.Cut(rest, "@")
		var start, end float64
		_, err := fmt.Sscanf(times, "%g-%g", &start, &end)
		if err != nil {
			panic(err)
		}
		typ := "word"
		if strings.HasPrefix(text, "(") {
			typ = "audio_event"
		}
		out = append(out, elevenlabs.Word{Text: text, Type: typ, SpeakerID: spk, Start: &start, End: &end})
	}
	return out
}

type chunkView struct {
	Speaker    string
	Text       string
	Start, End float64
	Words      []string // text[offset_i:offset_i+1] trimmed, to check offsets
}

func view(chunks []*chunk) []chunkView {
	var out []chunkView
	for _, c := range chunks {
		v := chunkView{Text: c.text.String()}
		if c.speaker != nil {
			v.Speaker = *c.speaker
		}
		if c.start != nil {
			v.Start = *c.start
		}
		if c.end != nil {
			v.End = *c.end
		}
		for i, off := range c.offsets {
			stop := len(v.Text)
			if i+1 < len(c.offsets) {
				stop = c.offsets[i+1]
			}
			v.Words = append(v.Words, strings.TrimSpace(v.Text[off:stop]))
		}
		out = append(out, v)
	}
	return out
}

func TestChunkWordsCutsAtSpeakerPauseAndKeepsSpacing(t *testing.T) {
	t.Parallel()
	words := script(
		" ", // leading spacing is dropped
		"s0:Hello,@0-0.4", " ", "s0:world.@0.5-0.9", " ",
		"s1:Hi@1.0-1.2", "  ", "s1:(laughs)@1.3-1.6", " ", "s1:there@1.7-2.0", " ",
		"s1:again@3.1-3.5", // 1.1 s pause
		" ",
	)
	got := view(chunkWords(words))
	require.Equal(t, []chunkView{
		{Speaker: "s0", Text: "Hello, world.", Start: 0, End: 0.9, Words: []string{"Hello,", "world."}},
		{Speaker: "s1", Text: "Hi  (laughs) there", Start: 1.0, End: 2.0, Words: []string{"Hi", "(laughs)", "there"}},
		{Speaker: "s1", Text: "again", Start: 3.1, End: 3.5, Words: []string{"again"}},
	}, got)
}

func TestChunkWordsPauseJustUnderASecondDoesNotCut(t *testing.T) {
	t.Parallel()
	got := view(chunkWords(script("a:one@0-0.5", " ", "a:two@1.49-2")))
	require.Len(t, got, 1)
	got = view(chunkWords(script("a:one@0-0.5", " ", "a:two@1.5-2")))
	require.Len(t, got, 2)
}

func TestChunkWordsChannelChangeCuts(t *testing.T) {
	t.Parallel()
	zero, one := 0, 1
	words := script("s:left@0-0.2", " ", "s:side@0.3-0.5", "s:right@0.1-0.3")
	words[0].ChannelIndex, words[2].ChannelIndex, words[3].ChannelIndex = &zero, &zero, &one
	chunks := chunkWords(words)
	require.Len(t, chunks, 2)
	require.Equal(t, 0, *chunks[0].channel)
	require.Equal(t, 1, *chunks[1].channel)
	require.Equal(t, "left side", chunks[0].text.String())
}

// A long monologue is cut on sentence ends once a chunk has two thirds of
// its target, and anywhere once it has one and a half times the target.
func TestChunkWordsLengthAndSentences(t *testing.T) {
	t.Parallel()
	var entries []string
	at := 0.0
	word := func(text string) {
		entries = append(entries, fmt.Sprintf("s:%s@%g-%g", text, at, at+0.2), " ")
		at += 0.25
	}
	// 45 words then a sentence end: past 2/3 of 60 words, so it cuts there.
	for i := range 44 {
		word(fmt.Sprintf("w%d", i))
	}
	word("end.")
	// 100 words without any sentence end: cut at 90.
	for i := range 100 {
		word(fmt.Sprintf("x%d", i))
	}
	got := view(chunkWords(script(entries...)))
	require.Len(t, got, 3)
	require.Len(t, got[0].Words, 45)
	require.True(t, strings.HasSuffix(got[0].Text, "end."))
	require.Len(t, got[1].Words, chunkMaxWords)
	require.Len(t, got[2].Words, 100-chunkMaxWords)

	// A sentence end early in a chunk does not cut it.
	got = view(chunkWords(script("s:Yes.@0-0.2", " ", "s:Go@0.3-0.5")))
	require.Len(t, got, 1)
}

func TestChunkWordsTimeLimit(t *testing.T) {
	t.Parallel()
	// Slow speech: one word every 0.9 s (no pause reaches a second). A
	// sentence end after 2/3 of 20 s cuts; without one, 30 s does.
	var entries []string
	for i := range 60 {
		text := fmt.Sprintf("w%d", i)
		if i == 15 { // ends at 15×0.9+0.5 = 14 s
			text += "?"
		}
		entries = append(entries, fmt.Sprintf("s:%s@%g-%g", text, float64(i)*0.9, float64(i)*0.9+0.5), " ")
	}
	got := view(chunkWords(script(entries...)))
	require.Len(t, got, 3)
	require.Len(t, got[0].Words, 16)
	require.LessOrEqual(t, got[1].End-got[1].Start, chunkMaxSecs)
	require.Greater(t, got[1].End-got[1].Start, chunkMaxSecs-1)
}

func TestChunkWordsWithoutTimesOrSpeakers(t *testing.T) {
	t.Parallel()
	words := []elevenlabs.Word{{Text: "no", Type: "word"}, {Text: " ", Type: "spacing"}, {Text: "times", Type: "word"}}
	chunks := chunkWords(words)
	require.Len(t, chunks, 1)
	require.Nil(t, chunks[0].start)
	require.Nil(t, chunks[0].speaker)
	rows := toRows(chunks)
	require.Equal(t, []string{"{NULL,NULL}"}, rows.starts)
	require.Equal(t, []string{"{0,3}"}, rows.offsets)
	require.Empty(t, chunkWords(nil))
}

func TestEndsSentence(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"end.": true, "what?": true, "wow!": true, `said."`: true, "(so.)": true, "bien…": true, "好。": true,
		"Mr": false, "and,": false, "": false, "3.5": false,
	} {
		require.Equal(t, want, endsSentence(s), s)
	}
}
