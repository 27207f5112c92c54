package web

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
)

// turn is a paragraph of the transcript: one speaker (or channel) talking.
type turn struct {
	Speaker string
	Class   string // spk0…spk5, by order of first appearance
	Start   float64
	Timed   bool
	Words   []word
}

type word struct {
	Text  string
	Start float64
	Timed bool
	Space bool // a space comes before it
	Event bool // an audio event such as (laughter)
}

// A silence this long starts a new paragraph within one speaker's turn,
// so a monologue does not become one wall of text.
const paragraphPause = 2.5

// turns groups a transcript's words by speaker. Multichannel transcripts
// are merged by start time and labelled by channel. Spacing entries become
// spaces; a word without a speaker belongs to the turn around it.
func turns(raw json.RawMessage) ([]turn, error) {
	var words []elevenlabs.Word
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &words); err != nil {
		return nil, fmt.Errorf("decode words: %w", err)
	}
	channels := map[int]bool{}
	for _, w := range words {
		if w.ChannelIndex != nil {
			channels[*w.ChannelIndex] = true
		}
	}
	multi := len(channels) > 1
	if multi {
		// Each channel's words are in order; interleave them by time.
		slices.SortStableFunc(words, func(a, b elevenlabs.Word) int {
			return cmp.Compare(startOf(a), startOf(b))
		})
	}
	var (
		out     []turn
		classes = map[string]string{}
		space   bool
		lastSpk string
		lastEnd = -1.0
	)
	for _, w := range words {
		if w.Type == "spacing" {
			space = true
			continue
		}
		text := strings.Join(strings.Fields(w.Text), " ")
		if text == "" {
			space = space || w.Text != ""
			continue
		}
		key, label := w.SpeakerID, export.SpeakerLabel(w.SpeakerID)
		if multi && w.ChannelIndex != nil {
			key, label = "channel:"+strconv.Itoa(*w.ChannelIndex), "Channel "+strconv.Itoa(*w.ChannelIndex+1)
			space = true // spacing entries belong to one channel
		}
		if key == "" {
			key = lastSpk
		}
		timed := w.Start != nil
		ws := word{Text: text, Timed: timed, Space: space || w.Type == "audio_event", Event: w.Type == "audio_event"}
		if timed {
			ws.Start = *w.Start
		}
		pause := timed && lastEnd >= 0 && ws.Start-lastEnd >= paragraphPause
		if len(out) == 0 || key != lastSpk || pause {
			if _, ok := classes[key]; !ok {
				classes[key] = "spk" + strconv.Itoa(len(classes)%6)
			}
			if key == lastSpk && len(out) > 0 {
				label = out[len(out)-1].Speaker
			}
			out = append(out, turn{Speaker: label, Class: classes[key], Start: ws.Start, Timed: timed})
			ws.Space = false
		}
		t := &out[len(out)-1]
		t.Words = append(t.Words, ws)
		lastSpk, space = key, false
		if w.End != nil {
			lastEnd = *w.End
		} else if timed {
			lastEnd = ws.Start
		}
	}
	// With one speaker the label says nothing (as export's "auto").
	if len(classes) == 1 {
		for i := range out {
			out[i].Speaker = ""
		}
	}
	return out, nil
}

func startOf(w elevenlabs.Word) float64 {
	if w.Start == nil {
		return 0
	}
	return *w.Start
}
