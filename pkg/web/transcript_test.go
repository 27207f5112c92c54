package web

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// turnText renders turns as "Label@start: words" lines, spaces as the page shows them.
func turnText(ts []turn) []string {
	var out []string
	for _, t := range ts {
		s := t.Speaker + "@" + secsParam(t.Start) + ":"
		for _, w := range t.Words {
			if w.Space {
				s += " "
			}
			if w.Event {
				s += "[" + w.Text + "]"
			} else {
				s += w.Text
			}
		}
		out = append(out, s)
	}
	return out
}

func TestWebTranscriptTurns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		words string
		want  []string
	}{
		{
			name: "SpeakersAndSpacing",
			words: `[{"text":"Hi","start":0,"end":0.2,"type":"word","speaker_id":"speaker_0"},{"text":" ","type":"spacing","speaker_id":"speaker_0"},
				{"text":"there.","start":0.3,"end":0.5,"type":"word","speaker_id":"speaker_0"},
				{"text":"(laughs)","start":0.6,"end":0.8,"type":"audio_event"},
				{"text":"Hello","start":1,"end":1.2,"type":"word","speaker_id":"speaker_1"}]`,
			want: []string{"Speaker 1@0:Hi there. [(laughs)]", "Speaker 2@1:Hello"},
		},
		{
			name: "OneSpeakerNeedsNoLabel",
			words: `[{"text":"One","start":0,"end":0.2,"type":"word","speaker_id":"speaker_0"},{"text":" ","type":"spacing"},
				{"text":"two","start":0.3,"end":0.5,"type":"word","speaker_id":"speaker_0"}]`,
			want: []string{"@0:One two"},
		},
		{
			name: "LongPauseStartsAParagraph",
			words: `[{"text":"Before.","start":0,"end":1,"type":"word","speaker_id":"speaker_0"},{"text":" ","type":"spacing"},
				{"text":"After.","start":5,"end":6,"type":"word","speaker_id":"speaker_0"}]`,
			want: []string{"@0:Before.", "@5:After."},
		},
		{
			name: "ChannelsInterleaveByTime",
			words: `[{"text":"left","start":0,"end":0.5,"type":"word","channel_index":0},{"text":"again","start":2,"end":2.5,"type":"word","channel_index":0},
				{"text":"right","start":1,"end":1.5,"type":"word","channel_index":1}]`,
			want: []string{"Channel 1@0:left", "Channel 2@1:right", "Channel 1@2:again"},
		},
		{
			name:  "NoTimestamps",
			words: `[{"text":"plain","type":"word"},{"text":" ","type":"spacing"},{"text":"words","type":"word"}]`,
			want:  []string{"@0:plain words"},
		},
		{name: "Nothing", words: `null`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := turns(json.RawMessage(tt.words))
			require.NoError(t, err)
			require.Equal(t, tt.want, turnText(got))
		})
	}
	_, err := turns(json.RawMessage(`{"not":"words"}`))
	require.Error(t, err)
}
