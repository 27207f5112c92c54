package export

import (
	"errors"
	"fmt"
	"strings"
)

// Format is an output format.
type Format string

// The output formats.
const (
	SRT  Format = "srt"
	VTT  Format = "vtt"
	TXT  Format = "txt"
	JSON Format = "json"
	CSV  Format = "csv"
)

// Formats lists every format, in the order help texts show them.
var Formats = []Format{SRT, VTT, TXT, JSON, CSV}

// ParseFormat accepts a format name in any case, with or without a dot.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "."))
	for _, known := range Formats {
		if f == known {
			return f, nil
		}
	}
	return "", fmt.Errorf("export: unknown format %q (want srt, vtt, txt, json or csv)", s)
}

// Extension is the file name extension, without the dot.
func (f Format) Extension() string { return string(f) }

// ContentType is the MIME type of the rendered output.
func (f Format) ContentType() string {
	switch f {
	case SRT:
		return "application/x-subrip; charset=utf-8"
	case VTT:
		return "text/vtt; charset=utf-8"
	case TXT:
		return "text/plain; charset=utf-8"
	case JSON:
		return "application/json"
	case CSV:
		return "text/csv; charset=utf-8"
	}
	return "application/octet-stream"
}

// SpeakerLabels says whether cues and paragraphs name their speaker.
type SpeakerLabels string

// Speaker label modes.
const (
	// SpeakersAuto (or "") labels speakers when the transcript has more
	// than one speaker or channel.
	SpeakersAuto SpeakerLabels = "auto"
	SpeakersOn   SpeakerLabels = "on"
	SpeakersOff  SpeakerLabels = "off"
)

// Defaults of Options; a zero field means its default.
const (
	DefaultMaxCueSecs   = 7.0
	DefaultMaxLineChars = 42
	DefaultMaxLines     = 2
	DefaultPauseSecs    = 0.8
)

// Options shape the cues. The zero value gives the defaults; negative
// numbers are an error.
type Options struct {
	// MaxCueSecs is the longest a cue may last. Default 7.
	MaxCueSecs float64
	// MaxLineChars is the most characters (runes) on a line. Default 42.
	MaxLineChars int
	// MaxLines is the most lines in a cue. Default 2.
	MaxLines int
	// PauseSecs: a silence at least this long starts a new cue. Default 0.8.
	PauseSecs float64
	// Speakers says when srt, vtt and txt name speakers ("Speaker 1", or
	// "Channel 1" in multichannel transcripts). Default SpeakersAuto. json
	// and csv always carry the speaker.
	Speakers SpeakerLabels
	// Timestamps (txt only) starts each paragraph with its time, [hh:mm:ss].
	// Ignored when the transcript has no timestamps.
	Timestamps bool
}

func (o Options) withDefaults() Options {
	if o.MaxCueSecs == 0 {
		o.MaxCueSecs = DefaultMaxCueSecs
	}
	if o.MaxLineChars == 0 {
		o.MaxLineChars = DefaultMaxLineChars
	}
	if o.MaxLines == 0 {
		o.MaxLines = DefaultMaxLines
	}
	if o.PauseSecs == 0 {
		o.PauseSecs = DefaultPauseSecs
	}
	if o.Speakers == "" {
		o.Speakers = SpeakersAuto
	}
	return o
}

// validate checks options after withDefaults, naming the bad field.
func (o Options) validate() error {
	var errs []error
	// The comparisons are written so that NaN fails them too.
	if !(o.MaxCueSecs > 0) {
		errs = append(errs, fmt.Errorf("MaxCueSecs must be positive, got %v", o.MaxCueSecs))
	}
	if o.MaxLineChars < 1 {
		errs = append(errs, fmt.Errorf("MaxLineChars must be positive, got %d", o.MaxLineChars))
	}
	if o.MaxLines < 1 {
		errs = append(errs, fmt.Errorf("MaxLines must be positive, got %d", o.MaxLines))
	}
	if !(o.PauseSecs > 0) {
		errs = append(errs, fmt.Errorf("PauseSecs must be positive, got %v", o.PauseSecs))
	}
	switch o.Speakers {
	case SpeakersAuto, SpeakersOn, SpeakersOff:
	default:
		errs = append(errs, fmt.Errorf("Speakers must be auto, on or off, got %q", o.Speakers))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("export: options: %w", err)
	}
	return nil
}
