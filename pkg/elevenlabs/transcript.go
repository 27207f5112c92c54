package elevenlabs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sjson "github.com/segmentio/encoding/json"
)

// Word is one entry of a transcript's words: a word, a spacing or an audio event.
type Word struct {
	Text      string   `json:"text"`
	Start     *float64 `json:"start,omitempty"`
	End       *float64 `json:"end,omitempty"`
	Type      string   `json:"type"`
	SpeakerID string   `json:"speaker_id,omitempty"`
	Logprob   float64  `json:"logprob"`
	// Characters are kept as they came: nothing here reads them, and
	// decoding a character-level transcript's millions of them into structs
	// took most of the sink's memory.
	Characters   json.RawMessage `json:"characters,omitempty"`
	ChannelIndex *int            `json:"channel_index,omitempty"`
}

// Chunk is SpeechToTextChunkResponseModel: one channel's (or the only) result.
type Chunk struct {
	LanguageCode        string            `json:"language_code"`
	LanguageProbability float64           `json:"language_probability"`
	Text                string            `json:"text"`
	Words               []Word            `json:"words"`
	ChannelIndex        *int              `json:"channel_index,omitempty"`
	AdditionalFormats   []json.RawMessage `json:"additional_formats,omitempty"`
	TranscriptionID     string            `json:"transcription_id,omitempty"`
	Entities            []json.RawMessage `json:"entities,omitempty"`
	AudioDurationSecs   *float64          `json:"audio_duration_secs,omitempty"`
}

// Transcript is a result flattened for storage: single-channel results as
// they are; multichannel ("separate") results with the channels' texts joined
// by newlines and their words concatenated, each word keeping channel_index.
// Channels counts the channels: for "separate" output the chunks, for
// "combined" output (one chunk) the distinct channel_index of its words,
// and 1 for plain single-channel results.
type Transcript struct {
	LanguageCode        string
	LanguageProbability float64
	Text                string
	Words               []Word
	TranscriptionID     string
	AudioDurationSecs   *float64
	Channels            int
	// Merged says Words were put together from several channels: they are
	// not the payload's own top-level "words".
	Merged bool
}

type multichannel struct {
	Transcripts       []Chunk  `json:"transcripts"`
	TranscriptionID   string   `json:"transcription_id,omitempty"`
	AudioDurationSecs *float64 `json:"audio_duration_secs,omitempty"`
}

// ParseTranscript decodes a single-channel or multichannel result (the sync
// answer, the GET transcript answer, or a webhook's data.transcription).
func ParseTranscript(raw json.RawMessage) (*Transcript, error) {
	// One pass over what may be tens of MB: a single-channel result fills
	// Chunk, a multichannel one leaves Transcripts to decode on its own.
	var probe struct {
		Chunk
		Transcripts json.RawMessage `json:"transcripts"`
	}
	// segmentio's decoder, as for events: twice encoding/json's speed.
	if err := sjson.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("parse transcript: %w", err)
	}
	if len(probe.Transcripts) == 0 || string(probe.Transcripts) == "null" {
		c := &probe.Chunk
		return &Transcript{
			LanguageCode:        c.LanguageCode,
			LanguageProbability: c.LanguageProbability,
			Text:                c.Text,
			Words:               c.Words,
			TranscriptionID:     c.TranscriptionID,
			AudioDurationSecs:   c.AudioDurationSecs,
			Channels:            channelsOf(c.Words),
		}, nil
	}
	m := multichannel{TranscriptionID: probe.TranscriptionID, AudioDurationSecs: probe.AudioDurationSecs}
	if err := json.Unmarshal(probe.Transcripts, &m.Transcripts); err != nil {
		return nil, fmt.Errorf("parse multichannel transcript: %w", err)
	}
	if len(m.Transcripts) == 0 {
		return nil, errors.New("parse multichannel transcript: no channels")
	}
	t := &Transcript{
		TranscriptionID:   m.TranscriptionID,
		AudioDurationSecs: m.AudioDurationSecs,
		Channels:          len(m.Transcripts),
		Merged:            true,
	}
	texts := make([]string, 0, len(m.Transcripts))
	for i, c := range m.Transcripts {
		// The most confident channel that detected a language names it; a
		// silent channel (no code) must not blank out the others.
		if c.LanguageCode != "" && (t.LanguageCode == "" || c.LanguageProbability > t.LanguageProbability) {
			t.LanguageCode, t.LanguageProbability = c.LanguageCode, c.LanguageProbability
		}
		texts = append(texts, c.Text)
		idx := i
		if c.ChannelIndex != nil {
			idx = *c.ChannelIndex
		}
		for _, w := range c.Words {
			if w.ChannelIndex == nil {
				w.ChannelIndex = &idx
			}
			t.Words = append(t.Words, w)
		}
		if t.TranscriptionID == "" {
			t.TranscriptionID = c.TranscriptionID
		}
		if t.AudioDurationSecs == nil {
			t.AudioDurationSecs = c.AudioDurationSecs
		}
	}
	t.Text = strings.Join(texts, "\n")
	return t, nil
}

// channelsOf counts distinct channel_index values ("combined" multichannel
// output is one chunk whose words carry them); at least 1.
func channelsOf(words []Word) int {
	seen := map[int]bool{}
	for _, w := range words {
		if w.ChannelIndex != nil {
			seen[*w.ChannelIndex] = true
		}
	}
	return max(1, len(seen))
}
