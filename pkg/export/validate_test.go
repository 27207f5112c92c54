package export_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The validators below parse subtitles strictly, independently of the
// package's own code, so that a bug in rendering cannot hide itself.

// subCue is a parsed SRT or VTT cue.
type subCue struct {
	start, end int64 // milliseconds
	voice      string
	lines      []string // as displayed: SRT as written, VTT unescaped and without the voice tag
}

var (
	srtIndex  = regexp.MustCompile(`^[1-9][0-9]*$`)
	srtTiming = regexp.MustCompile(`^([0-9]{2,}):([0-5][0-9]):([0-5][0-9]),([0-9]{3}) --> ([0-9]{2,}):([0-5][0-9]):([0-5][0-9]),([0-9]{3})$`)
	vttTiming = regexp.MustCompile(`^([0-9]{2,}):([0-5][0-9]):([0-5][0-9])\.([0-9]{3}) --> ([0-9]{2,}):([0-5][0-9]):([0-5][0-9])\.([0-9]{3})$`)
	vttVoice  = regexp.MustCompile(`^<v ([^<>&\n]|&amp;|&lt;|&gt;)+>`)
	vttEntity = regexp.MustCompile(`&(amp|lt|gt);`)
)

func timingMillis(m []string) (int64, int64) {
	conv := func(h, mi, s, ms string) int64 {
		hh, _ := strconv.ParseInt(h, 10, 64)
		mm, _ := strconv.ParseInt(mi, 10, 64)
		ss, _ := strconv.ParseInt(s, 10, 64)
		xx, _ := strconv.ParseInt(ms, 10, 64)
		return ((hh*60+mm)*60+ss)*1000 + xx
	}
	return conv(m[1], m[2], m[3], m[4]), conv(m[5], m[6], m[7], m[8])
}

func checkText(data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("not valid UTF-8")
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return fmt.Errorf("starts with a BOM")
	}
	if bytes.ContainsRune(data, '\r') {
		return fmt.Errorf("contains CR")
	}
	return nil
}

// checkTimes: end > start, starts strictly increasing, no overlap.
func checkTimes(cues []subCue) error {
	for i, c := range cues {
		if c.end <= c.start {
			return fmt.Errorf("cue %d: end %d <= start %d", i+1, c.end, c.start)
		}
		if i > 0 {
			p := cues[i-1]
			if c.start <= p.start {
				return fmt.Errorf("cue %d: start %d not after previous start %d", i+1, c.start, p.start)
			}
			if c.start < p.end {
				return fmt.Errorf("cue %d: start %d overlaps previous end %d", i+1, c.start, p.end)
			}
		}
	}
	return nil
}

func parseSRT(data []byte) ([]subCue, error) {
	if err := checkText(data); err != nil {
		return nil, fmt.Errorf("srt: %w", err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	if !bytes.HasSuffix(data, []byte("\n\n")) || bytes.HasSuffix(data, []byte("\n\n\n")) {
		return nil, fmt.Errorf("srt: does not end with exactly one blank line")
	}
	blocks := strings.Split(strings.TrimSuffix(string(data), "\n\n"), "\n\n")
	var cues []subCue
	for i, b := range blocks {
		lines := strings.Split(b, "\n")
		if len(lines) < 3 {
			return nil, fmt.Errorf("srt: block %d has %d lines, want index, timing and text", i+1, len(lines))
		}
		if !srtIndex.MatchString(lines[0]) || lines[0] != strconv.Itoa(i+1) {
			return nil, fmt.Errorf("srt: block %d: index %q, want %d", i+1, lines[0], i+1)
		}
		m := srtTiming.FindStringSubmatch(lines[1])
		if m == nil {
			return nil, fmt.Errorf("srt: block %d: bad timing line %q", i+1, lines[1])
		}
		c := subCue{lines: lines[2:]}
		c.start, c.end = timingMillis(m)
		for _, l := range c.lines {
			if strings.TrimSpace(l) == "" || l != strings.TrimSpace(l) {
				return nil, fmt.Errorf("srt: block %d: blank or padded text line %q", i+1, l)
			}
			if strings.Contains(l, "-->") {
				return nil, fmt.Errorf("srt: block %d: text line holds an arrow: %q", i+1, l)
			}
		}
		cues = append(cues, c)
	}
	if err := checkTimes(cues); err != nil {
		return nil, fmt.Errorf("srt: %w", err)
	}
	return cues, nil
}

func parseVTT(data []byte) ([]subCue, error) {
	if err := checkText(data); err != nil {
		return nil, fmt.Errorf("vtt: %w", err)
	}
	s := string(data)
	if !strings.HasPrefix(s, "WEBVTT\n\n") {
		return nil, fmt.Errorf("vtt: no WEBVTT header line followed by a blank line")
	}
	s = strings.TrimPrefix(s, "WEBVTT\n\n")
	if s == "" {
		return nil, nil
	}
	if !strings.HasSuffix(s, "\n\n") || strings.HasSuffix(s, "\n\n\n") {
		return nil, fmt.Errorf("vtt: does not end with exactly one blank line")
	}
	var cues []subCue
	for i, b := range strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		lines := strings.Split(b, "\n")
		if len(lines) < 2 {
			return nil, fmt.Errorf("vtt: block %d has no text", i+1)
		}
		m := vttTiming.FindStringSubmatch(lines[0])
		if m == nil {
			return nil, fmt.Errorf("vtt: block %d: bad timing line %q", i+1, lines[0])
		}
		var c subCue
		c.start, c.end = timingMillis(m)
		for k, l := range lines[1:] {
			if k == 0 {
				if v := vttVoice.FindString(l); v != "" {
					c.voice = unescapeVTT(v[3 : len(v)-1])
					l = l[len(v):]
				}
			}
			if strings.TrimSpace(l) == "" || l != strings.TrimSpace(l) {
				return nil, fmt.Errorf("vtt: block %d: blank or padded text line %q", i+1, l)
			}
			if strings.ContainsAny(l, "<>") {
				return nil, fmt.Errorf("vtt: block %d: unescaped < or > in %q", i+1, l)
			}
			if strings.Count(l, "&") != len(vttEntity.FindAllString(l, -1)) {
				return nil, fmt.Errorf("vtt: block %d: unescaped & in %q", i+1, l)
			}
			c.lines = append(c.lines, unescapeVTT(l))
		}
		cues = append(cues, c)
	}
	if err := checkTimes(cues); err != nil {
		return nil, fmt.Errorf("vtt: %w", err)
	}
	return cues, nil
}

func unescapeVTT(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
