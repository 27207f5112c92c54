package elevenlabs_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// multichannelSeparate is a "separate" result: one chunk per channel. The
// first channel's words lack channel_index, so the parser must add it.
const multichannelSeparate = `{"transcripts":[
 {"language_code":"en","language_probability":0.91,"text":"Hello agent","channel_index":0,
  "words":[{"text":"Hello","start":0,"end":0.4,"type":"word","logprob":-0.2},
           {"text":" ","type":"spacing","logprob":0},
           {"text":"agent","start":0.5,"end":0.9,"type":"word","logprob":-0.3}]},
 {"language_code":"de","language_probability":0.97,"text":"Hi customer","channel_index":1,
  "words":[{"text":"Hi","start":1.0,"end":1.2,"type":"word","logprob":-0.1,"channel_index":1},
           {"text":"customer","start":1.3,"end":1.9,"type":"word","logprob":-0.1,"channel_index":1}]}
],"transcription_id":"tr_multi","audio_duration_secs":2.5}`

func TestParseTranscriptSingle(t *testing.T) {
	t.Parallel()
	tr, err := elevenlabs.ParseTranscript(json.RawMessage(singleTranscription))
	require.NoError(t, err)
	require.Equal(t, 1, tr.Channels)
	require.Equal(t, "en", tr.LanguageCode)
	require.InDelta(t, 0.98, tr.LanguageProbability, 1e-9)
	require.Equal(t, "Hello world", tr.Text)
	require.Equal(t, "tr_1", tr.TranscriptionID)
	require.Len(t, tr.Words, 1)
	require.Nil(t, tr.Words[0].ChannelIndex)
	require.InDelta(t, 0.5, *tr.Words[0].End, 1e-9)
}

func TestParseTranscriptMultichannelSeparate(t *testing.T) {
	t.Parallel()
	tr, err := elevenlabs.ParseTranscript(json.RawMessage(multichannelSeparate))
	require.NoError(t, err)
	require.Equal(t, 2, tr.Channels)
	require.Equal(t, "Hello agent\nHi customer", tr.Text)
	require.Equal(t, "tr_multi", tr.TranscriptionID)
	require.InDelta(t, 2.5, *tr.AudioDurationSecs, 1e-9)
	require.Equal(t, "de", tr.LanguageCode, "the most confident channel names the language")

	var texts []string
	var channels []int
	for _, w := range tr.Words {
		require.NotNil(t, w.ChannelIndex, "word %q", w.Text)
		texts = append(texts, w.Text)
		channels = append(channels, *w.ChannelIndex)
	}
	require.Equal(t, []string{"Hello", " ", "agent", "Hi", "customer"}, texts)
	require.Equal(t, []int{0, 0, 0, 1, 1}, channels)
}

func TestParseTranscriptSilentChannelKeepsLanguage(t *testing.T) {
	t.Parallel()
	raw := `{"transcripts":[
	 {"language_code":"en","language_probability":0.9,"text":"hi","words":[]},
	 {"language_code":"","language_probability":0.95,"text":"","words":[]},
	 {"language_code":"fr","language_probability":0.2,"text":"oui","words":[]}]}`
	tr, err := elevenlabs.ParseTranscript(json.RawMessage(raw))
	require.NoError(t, err)
	require.Equal(t, "en", tr.LanguageCode)
	require.Equal(t, 3, tr.Channels)
	require.Equal(t, "hi\n\noui", tr.Text)
}

func TestParseTranscriptCombined(t *testing.T) {
	t.Parallel()
	// "combined" output is one chunk whose words carry channel_index.
	raw := `{"language_code":"en","language_probability":0.99,"text":"Hello Hi",
	 "words":[{"text":"Hello","start":0,"end":0.4,"type":"word","logprob":0,"channel_index":0},
	          {"text":"Hi","start":0.5,"end":0.7,"type":"word","logprob":0,"channel_index":1},
	          {"text":"again","start":0.8,"end":0.9,"type":"word","logprob":0,"channel_index":0}],
	 "transcription_id":"tr_c"}`
	tr, err := elevenlabs.ParseTranscript(json.RawMessage(raw))
	require.NoError(t, err)
	require.Equal(t, 2, tr.Channels)
	require.Equal(t, "Hello Hi", tr.Text)
	require.Equal(t, "tr_c", tr.TranscriptionID)
	require.Len(t, tr.Words, 3)
	require.Equal(t, 1, *tr.Words[1].ChannelIndex)
	require.Equal(t, 0, *tr.Words[2].ChannelIndex)
}

func TestParseTranscriptRejects(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"NotJSON":       `nope`,
		"Array":         `[1]`,
		"NoChannels":    `{"transcripts":[]}`,
		"ChannelsWrong": `{"transcripts":{"a":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := elevenlabs.ParseTranscript(json.RawMessage(raw))
			require.Error(t, err)
		})
	}
}
