package export

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// Cue is one subtitle: its time, speaker and wrapped lines.
type Cue struct {
	// Start and End are in seconds, whole milliseconds; both zero when the
	// transcript has no timestamps.
	Start, End float64
	// Speaker is the label ("Speaker 1", "Channel 2", or a speaker_id that
	// is not of the form speaker_N), "" when the words name no speaker. It is
	// set whether or not labels are shown.
	Speaker string
	// SpeakerID is the speaker_id of the cue's first word.
	SpeakerID string
	// Channel is the channel_index of the cue's words, nil when they have
	// none.
	Channel *int
	// Lines is the wrapped text, without the speaker label. When labels are
	// shown the first line leaves room for "Label: ".
	Lines []string
	// Text is the text on one line (joined as the words are, not with the
	// line breaks' spaces, which a language written without spaces lacks).
	Text string
	// Words are the cue's words and audio events (no spacing), as given.
	Words []elevenlabs.Word
}

// token is a word or audio event ready for layout.
type token struct {
	word    elevenlabs.Word
	text    string // whitespace collapsed
	width   int    // runes
	space   bool   // a space separates it from the previous token of its channel
	timed   bool
	start   float64
	end     float64
	speaker string // speaker key: the channel in multichannel transcripts, else speaker_id
	channel int
}

// transcript is the words prepared once for cues and paragraphs.
type transcript struct {
	tokens   []token // interleaved by start time across channels
	timed    bool    // every token has a start and an end
	multi    bool    // more than one channel
	labels   map[string]string
	speakers []string // speaker keys in order of first appearance
}

func prepare(words []elevenlabs.Word) *transcript {
	tr := &transcript{timed: true, labels: map[string]string{}}
	var order []int
	streams := map[int][]elevenlabs.Word{}
	for _, w := range words {
		ch := 0
		if w.ChannelIndex != nil {
			ch = *w.ChannelIndex
		}
		if _, ok := streams[ch]; !ok {
			order = append(order, ch)
		}
		streams[ch] = append(streams[ch], w)
	}
	slices.Sort(order)
	tr.multi = len(order) > 1

	perChannel := make([][]token, 0, len(order))
	for _, ch := range order {
		toks := tokenize(streams[ch], ch, tr.multi)
		for _, t := range toks {
			if !t.timed {
				tr.timed = false
			}
		}
		perChannel = append(perChannel, toks)
	}
	if tr.timed {
		tr.tokens = interleave(perChannel)
	} else {
		// Without times there is nothing to interleave by.
		for _, toks := range perChannel {
			tr.tokens = append(tr.tokens, toks...)
		}
	}
	for _, t := range tr.tokens {
		if t.speaker == "" {
			continue
		}
		if _, ok := tr.labels[t.speaker]; !ok {
			tr.speakers = append(tr.speakers, t.speaker)
			tr.labels[t.speaker] = label(t, tr.multi)
		}
	}
	return tr
}

var speakerN = regexp.MustCompile(`^speaker_(\d+)$`)

func label(t token, multi bool) string {
	if multi {
		return "Channel " + strconv.Itoa(t.channel+1)
	}
	return SpeakerLabel(t.speaker)
}

// SpeakerLabel names ElevenLabs' speaker_0 "Speaker 1", and leaves any
// other id as it is; the CLI and the console label speakers this way too.
func SpeakerLabel(id string) string {
	if m := speakerN.FindStringSubmatch(id); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n < math.MaxInt {
			return "Speaker " + strconv.Itoa(n+1)
		}
	}
	return id
}

// tokenize turns one channel's words into tokens. Spacing entries become the
// space flag of the next token. A channel with no spacing entries at all
// gets spaces between its words, since gluing them would be worse than
// spacing a language written without spaces.
func tokenize(words []elevenlabs.Word, ch int, multi bool) []token {
	hasSpacing := false
	for _, w := range words {
		if w.Type == "spacing" {
			hasSpacing = true
			break
		}
	}
	var toks []token
	pending := !hasSpacing
	prevEvent := false
	for _, w := range words {
		if w.Type == "spacing" {
			pending = true
			continue
		}
		text := strings.Join(strings.Fields(w.Text), " ")
		if text == "" {
			if w.Text != "" {
				pending = true
			}
			continue
		}
		event := w.Type == "audio_event"
		t := token{
			word:    w,
			text:    text,
			width:   utf8.RuneCountInString(text),
			space:   pending || event || prevEvent || strings.TrimLeft(w.Text, " \t\n\r") != w.Text,
			timed:   w.Start != nil && w.End != nil,
			channel: ch,
			speaker: w.SpeakerID,
		}
		if multi {
			t.speaker = "channel:" + strconv.Itoa(ch)
		}
		if t.timed {
			t.start, t.end = *w.Start, *w.End
			if t.end < t.start {
				t.end = t.start
			}
		}
		toks = append(toks, t)
		pending = !hasSpacing || strings.TrimRight(w.Text, " \t\n\r") != w.Text
		prevEvent = event
	}
	// A word without a speaker (often an audio event) belongs to the turn
	// around it rather than starting a turn of its own.
	last := ""
	for i := range toks {
		if toks[i].speaker == "" {
			toks[i].speaker = last
		} else {
			last = toks[i].speaker
		}
	}
	next := ""
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].speaker == "" {
			toks[i].speaker = next
		} else {
			next = toks[i].speaker
		}
	}
	return toks
}

// interleave merges channels by start time, keeping each channel's order;
// on equal times the lower channel goes first.
func interleave(chs [][]token) []token {
	if len(chs) == 1 {
		return chs[0]
	}
	n := 0
	for _, c := range chs {
		n += len(c)
	}
	out := make([]token, 0, n)
	pos := make([]int, len(chs))
	for len(out) < n {
		best := -1
		for i, c := range chs {
			if pos[i] < len(c) && (best < 0 || c[pos[i]].start < chs[best][pos[best]].start) {
				best = i
			}
		}
		out = append(out, chs[best][pos[best]])
		pos[best]++
	}
	return out
}

// Cues groups words into subtitle cues (see the package documentation for
// the rules). Words without timestamps give cues without times.
func Cues(words []elevenlabs.Word, o Options) ([]Cue, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return prepare(words).cues(o), nil
}

// showLabels resolves SpeakersAuto.
func (tr *transcript) showLabels(o Options) bool {
	switch o.Speakers {
	case SpeakersOn:
		return true
	case SpeakersOff:
		return false
	}
	return len(tr.speakers) > 1
}

func (tr *transcript) cues(o Options) []Cue {
	b := builder{o: o, tr: tr, show: tr.showLabels(o), capsOf: map[string][]int{}}
	for _, t := range tr.tokens {
		b.add(t)
	}
	b.emit(b.cur)
	if tr.timed {
		normalize(b.out)
	}
	return b.out
}

type builder struct {
	o      Options
	tr     *transcript
	show   bool
	capsOf map[string][]int
	cur    []token
	out    []Cue
}

// caps gives each line's capacity for a cue of this speaker: the first line
// leaves room for the label when labels are shown.
func (b *builder) caps(speaker string) []int {
	if caps, ok := b.capsOf[speaker]; ok {
		return caps
	}
	caps := make([]int, b.o.MaxLines)
	for i := range caps {
		caps[i] = b.o.MaxLineChars
	}
	if l := b.tr.labels[speaker]; b.show && l != "" {
		caps[0] -= utf8.RuneCountInString(l) + 2
	}
	b.capsOf[speaker] = caps
	return caps
}

func (b *builder) add(t token) {
	if len(b.cur) > 0 {
		last := b.cur[len(b.cur)-1]
		if t.speaker != b.cur[0].speaker || (b.tr.timed && ms(t.start)-ms(last.end) >= ms(b.o.PauseSecs)) {
			b.emit(b.cur)
			b.cur = nil
		}
	}
	if t.width > b.caps(t.speaker)[0] {
		// Too long for a line of its own: it stands alone.
		b.emit(b.cur)
		b.emit([]token{t})
		b.cur = nil
		return
	}
	for len(b.cur) > 0 && !b.fits(append(slices.Clip(b.cur), t)) {
		j := splitPoint(b.cur)
		b.emit(b.cur[:j])
		b.cur = slices.Clone(b.cur[j:])
	}
	b.cur = append(b.cur, t)
}

func (b *builder) fits(ts []token) bool {
	if b.tr.timed {
		end := ts[0].end
		for _, t := range ts {
			end = max(end, t.end)
		}
		if ms(end)-ms(ts[0].start) > ms(b.o.MaxCueSecs) {
			return false
		}
	}
	return lineCount(ts, b.caps(ts[0].speaker)) <= b.o.MaxLines
}

// splitPoint is where a cue that must end early ends: after the last
// sentence punctuation in its second half, else the last clause
// punctuation there, else after the last word there that is not an
// (English) article, preposition or conjunction, else at the end.
func splitPoint(ts []token) int {
	n := len(ts)
	strong := func(s string) bool { return !weak(s) }
	for _, ends := range []func(string) bool{endsSentence, endsClause, strong} {
		for j := n; j >= (n+1)/2 && j >= 1; j-- {
			if ends(ts[j-1].text) {
				return j
			}
		}
	}
	return n
}

func endsSentence(s string) bool {
	if abbreviation.MatchString(s) {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(strings.TrimRight(s, `"')]»”’`))
	return strings.ContainsRune(".?!…。？！", r)
}

// abbreviation matches words whose full stop usually ends no sentence: an
// initial, or a title or abbreviation that precedes more text.
var abbreviation = regexp.MustCompile(`^(\p{Lu}|[Dd]r|[Mm]rs?|[Mm]s|[Pp]rof|[Ss]t|[Mm]t|[Jj]r|[Ss]r|vs|e\.g|i\.e|[Nn]o)\.$`)

// weakWords are English words a line or cue should not end on: they lean
// on the word after them.
var weakWords = map[string]bool{
	"a": true, "an": true, "the": true, "to": true, "of": true, "and": true, "or": true,
	"but": true, "in": true, "on": true, "at": true, "for": true, "with": true, "that": true,
	"by": true, "from": true, "as": true, "if": true, "my": true, "your": true, "his": true,
	"her": true, "our": true, "their": true, "its": true, "i": true, "we": true, "is": true,
	"was": true, "so": true,
}

func weak(s string) bool { return weakWords[strings.ToLower(s)] }

func endsClause(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(strings.TrimRight(s, `"')]»”’`))
	return strings.ContainsRune(",;:—–，；：、", r)
}

func (b *builder) emit(ts []token) {
	if len(ts) == 0 {
		return
	}
	c := Cue{
		Speaker:   b.tr.labels[ts[0].speaker],
		SpeakerID: ts[0].word.SpeakerID,
		Channel:   ts[0].word.ChannelIndex,
		Lines:     layout(ts, b.caps(ts[0].speaker)),
		Text:      joinTokens(ts),
		Words:     make([]elevenlabs.Word, len(ts)),
	}
	if c.Channel != nil {
		ch := *c.Channel
		c.Channel = &ch
	}
	for i, t := range ts {
		c.Words[i] = t.word
	}
	if b.tr.timed {
		end := ts[0].end
		for _, t := range ts {
			end = max(end, t.end)
		}
		c.Start, c.End = float64(ms(ts[0].start))/1000, float64(ms(end))/1000
	}
	b.out = append(b.out, c)
}

// ms rounds seconds to whole milliseconds.
func ms(s float64) int64 { return int64(math.Round(s * 1000)) }

// normalize makes cue times strictly increasing, at least 1 ms long and
// free of overlap with the next cue.
func normalize(cues []Cue) {
	var prevStart int64 = -1
	for i := range cues {
		s, e := ms(cues[i].Start), ms(cues[i].End)
		if s < 0 {
			s = 0
		}
		if s <= prevStart {
			s = prevStart + 1
		}
		if e <= s {
			e = s + 1
		}
		if i > 0 && ms(cues[i-1].End) > s {
			cues[i-1].End = float64(s) / 1000
		}
		cues[i].Start, cues[i].End = float64(s)/1000, float64(e)/1000
		prevStart = s
	}
}

// lineWidth is the width of tokens i..j-1 on one line.
func lineWidth(ts []token) int {
	w := 0
	for k, t := range ts {
		if k > 0 && t.space {
			w++
		}
		w += t.width
	}
	return w
}

func capOf(caps []int, line int) int {
	if line < len(caps) {
		return caps[line]
	}
	return caps[len(caps)-1]
}

// lineCount is how many lines greedy wrapping needs (the fewest possible);
// math.MaxInt when a token does not fit on its line.
func lineCount(ts []token, caps []int) int {
	lines, w := 1, 0
	for k, t := range ts {
		add := t.width
		if w > 0 && k > 0 && t.space {
			add++
		}
		if w+add <= capOf(caps, lines-1) {
			w += add
			continue
		}
		if w == 0 {
			return math.MaxInt
		}
		lines++
		w = t.width
		if w > capOf(caps, lines-1) {
			return math.MaxInt
		}
	}
	return lines
}

// layout wraps the tokens into at most len(caps) lines, balanced (least sum
// of squared slack), with a bonus for breaking after punctuation large
// enough to prefer it to a somewhat better balance. A single
// token wider than its line is returned as one line.
func layout(ts []token, caps []int) []string {
	n := len(ts)
	if n == 1 || lineCount(ts, caps) == math.MaxInt {
		return []string{joinTokens(ts)}
	}
	maxLines := len(caps)
	bonus := int64(slices.Max(caps))
	bonus *= bonus
	const inf = math.MaxInt64 / 4
	// cost[l][i]: least cost of laying out ts[:i] in l lines.
	cost := make([][]int64, maxLines+1)
	from := make([][]int, maxLines+1)
	for l := range cost {
		cost[l] = make([]int64, n+1)
		from[l] = make([]int, n+1)
		for i := range cost[l] {
			cost[l][i] = inf
		}
	}
	cost[0][0] = 0
	for l := 0; l < maxLines; l++ {
		c := int64(caps[l])
		for i := 0; i < n; i++ {
			if cost[l][i] >= inf {
				continue
			}
			for j := i + 1; j <= n; j++ {
				w := int64(lineWidth(ts[i:j]))
				if w > c {
					break
				}
				slack := c - w
				v := cost[l][i] + slack*slack
				if j < n {
					switch {
					case endsSentence(ts[j-1].text):
						v -= bonus / 3
					case endsClause(ts[j-1].text):
						v -= bonus / 8
					case weak(ts[j-1].text):
						v += bonus / 8
					}
				}
				if v < cost[l+1][j] {
					cost[l+1][j], from[l+1][j] = v, i
				}
			}
		}
	}
	best, bestL := int64(inf), 0
	for l := 1; l <= maxLines; l++ {
		if cost[l][n] < best {
			best, bestL = cost[l][n], l
		}
	}
	if bestL == 0 {
		return []string{joinTokens(ts)}
	}
	lines := make([]string, bestL)
	for l, j := bestL, n; l > 0; l-- {
		i := from[l][j]
		lines[l-1] = joinTokens(ts[i:j])
		j = i
	}
	return lines
}

func joinTokens(ts []token) string {
	var sb strings.Builder
	for k, t := range ts {
		if k > 0 && t.space {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}
