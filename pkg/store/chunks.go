package store

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// chunksVersion is written to transcripts.chunks_version with the chunks.
// A change to how chunks are cut can make a migration set it back to NULL
// so that Migrate rebuilds them.
const chunksVersion = 1

// Where chunks are cut. A chunk is short enough that its time points the
// user at the right moment and its rank means something, long enough that
// a phrase rarely straddles two.
const (
	chunkPause       = 1.0 // seconds of silence that end a chunk
	chunkTargetSecs  = 20.0
	chunkTargetWords = 60
	// From two thirds of the target on, a sentence end closes the chunk;
	// at one and a half times the target it closes wherever it is.
	chunkMinSecs  = chunkTargetSecs * 2 / 3
	chunkMinWords = chunkTargetWords * 2 / 3
	chunkMaxSecs  = chunkTargetSecs * 3 / 2
	chunkMaxWords = chunkTargetWords * 3 / 2
)

// chunk is one transcript_chunks row before it has a request id and a
// text-search configuration.
type chunk struct {
	speaker    *string
	channel    *int
	start, end *float64
	text       strings.Builder
	offsets    []int      // byte offset in text of each word
	starts     []*float64 // start of each word
	lastEnd    *float64   // end of the last word, for pauses
	sentence   bool       // the last word ends a sentence
}

// chunkWords cuts a transcript's words into chunks: a new chunk starts at a
// change of speaker or channel, after a pause of chunkPause or more, and
// when the current one is long enough (see the chunk* constants). Spacing
// between two words of a chunk is kept, so its text reads as spoken;
// spacing at a chunk's edges is dropped. Audio events count as words.
func chunkWords(words []elevenlabs.Word) []*chunk {
	var out []*chunk
	var cur *chunk
	var gap strings.Builder // spacing seen since the last word
	for i := range words {
		w := &words[i]
		if w.Type == "spacing" {
			if cur != nil {
				gap.WriteString(w.Text)
			}
			continue
		}
		if strings.TrimSpace(w.Text) == "" {
			continue
		}
		if cur == nil || cur.breaksBefore(w) {
			cur = &chunk{speaker: nonEmpty(w.SpeakerID), channel: w.ChannelIndex}
			out = append(out, cur)
		} else {
			cur.text.WriteString(gap.String())
		}
		gap.Reset()
		cur.add(w)
	}
	return out
}

func (c *chunk) breaksBefore(w *elevenlabs.Word) bool {
	if !sameString(c.speaker, nonEmpty(w.SpeakerID)) || !sameInt(c.channel, w.ChannelIndex) {
		return true
	}
	if c.lastEnd != nil && w.Start != nil && *w.Start-*c.lastEnd >= chunkPause {
		return true
	}
	n := len(c.offsets)
	var secs float64
	if c.start != nil && w.End != nil {
		secs = *w.End - *c.start
	}
	if n >= chunkMaxWords || secs > chunkMaxSecs {
		return true
	}
	return c.sentence && (n >= chunkMinWords || secs > chunkMinSecs)
}

func (c *chunk) add(w *elevenlabs.Word) {
	c.offsets = append(c.offsets, c.text.Len())
	c.text.WriteString(w.Text)
	c.starts = append(c.starts, w.Start)
	if c.start == nil && w.Start != nil {
		c.start = w.Start
	}
	if w.End != nil {
		if c.end == nil || *w.End > *c.end {
			c.end = w.End
		}
		c.lastEnd = w.End
	}
	c.sentence = endsSentence(w.Text)
}

// endsSentence reports whether a word ends with sentence punctuation,
// possibly followed by closing quotes or brackets.
func endsSentence(s string) bool {
	s = strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.Is(unicode.Pe, r) || unicode.Is(unicode.Pf, r) || r == '"' || r == '\''
	})
	r, _ := utf8.DecodeLastRuneInString(s)
	switch r {
	case '.', '!', '?', '…', '。', '！', '？', '؟', '।':
		return true
	}
	return false
}

func sameString(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func sameInt(a, b *int) bool       { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// chunkRows is a transcript's chunks as the column arrays that the insert
// unnests. Per-chunk arrays travel as array literals: Postgres arrays must
// be rectangular, so int[][] cannot carry them.
type chunkRows struct {
	seq     []int32
	speaker []*string
	channel []*int32
	start   []*float64
	end     []*float64
	text    []string
	offsets []string
	starts  []string
}

func toRows(chunks []*chunk) *chunkRows {
	r := &chunkRows{}
	for i, c := range chunks {
		r.seq = append(r.seq, int32(i))
		r.speaker = append(r.speaker, c.speaker)
		var ch *int32
		if c.channel != nil {
			v := int32(*c.channel)
			ch = &v
		}
		r.channel = append(r.channel, ch)
		r.start = append(r.start, c.start)
		r.end = append(r.end, c.end)
		r.text = append(r.text, c.text.String())
		r.offsets = append(r.offsets, intArray(c.offsets))
		r.starts = append(r.starts, floatArray(c.starts))
	}
	return r
}

func intArray(v []int) string {
	b := make([]byte, 0, 2+len(v)*5)
	b = append(b, '{')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(append(b, '}'))
}

func floatArray(v []*float64) string {
	b := make([]byte, 0, 2+len(v)*7)
	b = append(b, '{')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if x == nil {
			b = append(b, "NULL"...)
			continue
		}
		// real keeps about 7 digits: millisecond precision to 2.7 hours,
		// centiseconds beyond; plenty to jump to a moment.
		b = strconv.AppendFloat(b, *x, 'g', -1, 32)
	}
	return string(append(b, '}'))
}

// insertChunksSQL writes a transcript's chunks; $3 is its language code.
// A chunk that exists already is left alone (replays never get here, as
// the transcript row exists; this is for safety only).
const insertChunksSQL = `INSERT INTO transcript_chunks (request_id, job_id, seq, speaker, channel, start_s, end_s,
		text, word_offsets, word_starts, ts_config, tsv)
	SELECT $1, $2, u.seq, u.speaker, u.channel, u.start_s, u.end_s, u.text, u.offs::integer[], u.starts::real[],
		c.cfg, to_tsvector(c.cfg::regconfig, u.text)
	FROM (SELECT text_search_config($3) AS cfg) c,
		unnest($4::integer[], $5::text[], $6::integer[], $7::float8[], $8::float8[], $9::text[], $10::text[], $11::text[])
			AS u(seq, speaker, channel, start_s, end_s, text, offs, starts)
	ON CONFLICT (request_id, seq) DO NOTHING`

func (r *chunkRows) args(requestID string, jobID *string, lang *string) []any {
	return []any{requestID, jobID, lang, r.seq, r.speaker, r.channel, r.start, r.end, r.text, r.offsets, r.starts}
}
