package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scribeq/scribeq/pkg/audio"
)

const (
	// defaultDurationSecs is assumed when the audio's duration cannot be
	// read from a WAV header (any other format, or a URL).
	defaultDurationSecs = 10.0
	// wordsPerSecond is roughly conversational speech.
	wordsPerSecond = 2.5
	minWords       = 3
	// languageProbability is what a confident detection looks like.
	languageProbability = 0.98
	defaultLanguage     = "eng"
)

// vocabulary is small and plain so pseudo-transcripts are easy to read and
// to search for in tests.
var vocabulary = []string{
	"the", "a", "river", "morning", "quiet", "archive", "signal", "paper",
	"window", "seven", "green", "market", "letter", "station", "garden", "light",
	"table", "north", "winter", "copper", "music", "bridge", "simple", "yellow",
	"harbor", "cloud", "voice", "record", "silver", "open", "measure", "field",
	"orange", "stone", "careful", "engine", "pocket", "lantern", "forest", "number",
	"travel", "kitchen", "bright", "hollow", "meadow", "thunder", "velvet", "candle",
	"ladder", "island", "anchor", "button", "circle", "distant", "feather", "gentle",
	"marble", "needle", "puzzle", "ribbon", "saddle", "timber", "valley", "whistle",
}

// source is what a transcript is derived from: a seed, the text when the
// audio names it, and the duration the timings spread over.
type source struct {
	seed     [32]byte
	comment  string // normalised; "" means pseudo-words
	duration float64
	channels int // from a WAV header; 1 when unknown
}

// fileSource derives the source of an uploaded file from its sha256, its
// size and the result of reading it as a WAV (hdr is ignored if err != nil).
func fileSource(sum [32]byte, size int64, hdr *audio.WAVHeader, err error) source {
	src := source{seed: sum, duration: defaultDurationSecs, channels: 1}
	if err != nil || hdr == nil {
		return src
	}
	src.comment = normalise(hdr.Comment)
	src.channels = max(1, hdr.Channels)
	if hdr.Duration > 0 && hdr.DataBytes > 0 {
		// A streamed WAV declares 0xFFFFFFFF data bytes; count what is there.
		data := min(hdr.DataBytes, max(0, size-hdr.DataOffset))
		src.duration = hdr.Duration * float64(data) / float64(hdr.DataBytes)
	}
	return src
}

// urlSource seeds a transcript from a source_url (nothing is fetched).
func urlSource(u string) source {
	return source{seed: sha256.Sum256([]byte(u)), duration: defaultDurationSecs, channels: 1}
}

func normalise(s string) string { return strings.Join(strings.Fields(s), " ") }

// TranscriptText returns the exact `text` the emulator answers for a file
// with these bytes: the WAV's LIST/INFO ICMT comment (whitespace collapsed
// to single spaces) when it has one, else pseudo-words seeded by the
// sha256 of the bytes, about 2.5 per second of audio (at least 3; a non-WAV
// file counts as 10 s).
func TranscriptText(audioBytes []byte) string {
	hdr, err := audio.ReadWAVHeader(bytes.NewReader(audioBytes))
	return fileSource(sha256.Sum256(audioBytes), int64(len(audioBytes)), hdr, err).text()
}

func (src source) rng(salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(
		binary.BigEndian.Uint64(src.seed[0:8])^salt,
		binary.BigEndian.Uint64(src.seed[8:16]),
	))
}

func (src source) text() string {
	if src.comment != "" {
		return src.comment
	}
	n := max(minWords, int(math.Round(wordsPerSecond*src.duration)))
	// Uint64 is used rather than IntN: PCG's output is fixed by its
	// algorithm, so a transcript never changes with the Go version.
	r := src.rng(0)
	var b strings.Builder
	left := 0
	for i := range n {
		first := left == 0
		if first {
			left = 4 + int(r.Uint64()%8) // words in this sentence
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		w := vocabulary[r.Uint64()%uint64(len(vocabulary))]
		if first {
			w = capitalise(w)
		}
		b.WriteString(w)
		left--
		if left == 0 || i == n-1 {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func capitalise(w string) string {
	r, size := utf8.DecodeRuneInString(w)
	return string(unicode.ToUpper(r)) + w[size:]
}

// Wire shapes: SpeechToTextChunkResponseModel and its words, as the API
// sends them (elevenlabs-python types/speech_to_text_chunk_response_model.py
// and speech_to_text_word_response_model.py).
type chunkModel struct {
	LanguageCode        string      `json:"language_code"`
	LanguageProbability float64     `json:"language_probability"`
	Text                string      `json:"text"`
	Words               []wordModel `json:"words"`
	TranscriptionID     string      `json:"transcription_id,omitempty"`
	AudioDurationSecs   float64     `json:"audio_duration_secs"`
}

type wordModel struct {
	Text       string      `json:"text"`
	Start      *float64    `json:"start,omitempty"`
	End        *float64    `json:"end,omitempty"`
	Type       string      `json:"type"`
	SpeakerID  string      `json:"speaker_id"`
	Logprob    float64     `json:"logprob"`
	Characters []charModel `json:"characters,omitempty"`
}

type charModel struct {
	Text  string  `json:"text"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// renderOptions are the request options that shape a transcript (but never
// its text: TranscriptText has no options).
type renderOptions struct {
	language    string
	diarize     bool
	granularity string // none | word | character
}

// render builds the transcript of src: words and spacings spread evenly
// over the duration, speakers alternating per sentence when diarizing.
func render(src source, opts renderOptions, transcriptionID string) chunkModel {
	text := src.text()
	tokens := strings.Fields(text)
	lang := opts.language
	if lang == "" {
		lang = defaultLanguage
	}
	out := chunkModel{
		LanguageCode:        lang,
		LanguageProbability: languageProbability,
		Text:                text,
		Words:               make([]wordModel, 0, 2*len(tokens)),
		TranscriptionID:     transcriptionID,
		AudioDurationSecs:   round3(src.duration),
	}
	slot := src.duration / float64(len(tokens))
	r := src.rng(0x9e3779b97f4a7c15) // another stream than the words'
	sentence := 0
	for i, tok := range tokens {
		speaker := "speaker_0"
		if opts.diarize && sentence%2 == 1 {
			speaker = "speaker_1"
		}
		start := float64(i) * slot
		end := start + 0.85*slot
		out.Words = append(out.Words, timed(wordModel{
			Text: tok, Type: "word", SpeakerID: speaker,
			Logprob: -float64(r.Uint64()%400) / 10000,
		}, start, end, opts.granularity))
		if i < len(tokens)-1 {
			out.Words = append(out.Words, timed(wordModel{
				Text: " ", Type: "spacing", SpeakerID: speaker,
			}, end, float64(i+1)*slot, opts.granularity))
		}
		if strings.HasSuffix(tok, ".") || strings.HasSuffix(tok, "?") || strings.HasSuffix(tok, "!") {
			sentence++
		}
	}
	return out
}

// timed sets w's timings (and characters) as granularity asks.
func timed(w wordModel, start, end float64, granularity string) wordModel {
	if granularity == "none" {
		return w
	}
	s, e := round3(start), round3(end)
	w.Start, w.End = &s, &e
	if granularity != "character" {
		return w
	}
	n := utf8.RuneCountInString(w.Text)
	at := func(i int) float64 {
		if i == n {
			return e // exactly the word's end, whatever the float error
		}
		return round3(start + (end-start)*float64(i)/float64(n))
	}
	i := 0
	for _, c := range w.Text {
		w.Characters = append(w.Characters, charModel{Text: string(c), Start: at(i), End: at(i + 1)})
		i++
	}
	return w
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
