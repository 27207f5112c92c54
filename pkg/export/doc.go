// Package export renders a stored transcript as subtitles (SRT, WebVTT),
// plain text, JSON or CSV from the words ElevenLabs returned, so any
// transcript can be exported again with other settings without paying for a
// new transcription. It also decodes the additional_formats ElevenLabs itself
// sent, which are kept as they came.
//
// # Cues
//
// Cues groups the words into subtitle cues. A cue ends
//   - where the speaker changes (in a multichannel transcript: the channel),
//   - at a silence of at least Options.PauseSecs,
//   - before it would last longer than Options.MaxCueSecs,
//   - before its text would not fit in Options.MaxLines lines of
//     Options.MaxLineChars characters (runes; a shown speaker label counts on
//     the first line).
//
// When a cue must end for length or duration it ends, if it can, after the
// last sentence (". ? !", not "Dr." or an initial) or else clause (", ; :")
// punctuation in its second half, else after the last word there that is
// not an English article, preposition or conjunction; the rest starts the
// next cue. Lines wrap at word boundaries, balanced, preferring a break
// after punctuation and avoiding one after such a word. A word too long for
// a line on its own gets a cue to itself and may exceed MaxLineChars; a word
// that lasts longer than MaxCueSecs likewise. Audio events ("(laughter)")
// are kept as text of their own, never glued to a neighbouring word; one
// without a speaker belongs to the turn around it.
//
// Words are joined as the spacing entries say; a channel without any
// spacing entries gets a space between words.
//
// Multichannel transcripts keep each channel's words in order and interleave
// the channels by start time, so cross-talk reads in the order it was said.
//
// # Times
//
// Cue times are whole milliseconds. Every cue lasts at least 1 ms (a cue of
// one zero-length word gets end = start + 1 ms), start times strictly
// increase (a cue starting with or before its predecessor is moved to 1 ms
// after it), and a cue that would overlap the next one is cut at the next
// one's start. So SRT and VTT times are always ordered, end > start, and
// consecutive cues never overlap.
//
// # Formats
//
//   - srt: cues numbered from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", a blank
//     line after each cue, "Speaker 1: " before the first line when labels
//     are shown. SRT cannot escape, so "-->" in text becomes "->".
//   - vtt: "WEBVTT", then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm" with the
//     label as a voice span ("<v Speaker 1>"); & < > are escaped.
//   - txt: one paragraph per speaker turn, blank lines between, optionally
//     "[hh:mm:ss] " first; not wrapped.
//   - json: the shape below (version 1), indented by two spaces, fields
//     always present and in this order, null where unknown. Segments are
//     the cues; times are seconds rounded to milliseconds; "speakers" lists
//     speakers in order of first appearance; "options" are the options in
//     effect (defaults filled in).
//   - csv: header start,end,speaker,text, then one row per cue; times in
//     seconds with three decimals, empty without timestamps.
//
// The json shape:
//
//	{
//	  "version": 1,
//	  "job_id": "…", "request_id": "…", "transcription_id": "…",
//	  "language": "en", "duration_secs": 42.108, "channels": 1,
//	  "timestamps": true,
//	  "options": {"max_cue_secs": 7, "max_line_chars": 42, "max_lines": 2, "pause_secs": 0.8},
//	  "speakers": [{"label": "Speaker 1", "speaker_id": "speaker_0", "channel": null}],
//	  "segments": [{
//	    "start": 0.24, "end": 5.113,
//	    "speaker": "Speaker 1", "speaker_id": "speaker_0", "channel": null,
//	    "text": "Welcome back…", "lines": ["Welcome back…", "…"],
//	    "words": [{"text": "Welcome", "type": "word", "start": 0.24, "end": 0.711, "logprob": -0.06}]
//	  }]
//	}
//
// All are UTF-8 without a BOM, with LF line endings, and deterministic.
//
// Transcripts made with timestamps_granularity "none" have no times: txt,
// json and csv still work (without times); srt and vtt fail with
// ErrNoTimestamps.
package export
