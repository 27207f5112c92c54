// Package audio knows just enough about media files for scribeq: which file
// names are audio or video, how to read (and write) a WAV header without
// reading the samples, and (Prober) what a stream of bytes is, how long it
// plays and how many channels it has, learned in one streaming pass with
// bounded memory. It uses only the standard library.
package audio

import (
	"path/filepath"
	"strings"
)

// mediaExts are the extensions ElevenLabs Speech-to-Text accepts in practice
// ("all major audio and video formats"), lowercase with the dot.
var mediaExts = map[string]bool{
	// audio
	".wav": true, ".wave": true, ".mp3": true, ".mp2": true, ".mpga": true,
	".m4a": true, ".m4b": true, ".aac": true, ".flac": true, ".ogg": true,
	".oga": true, ".opus": true, ".spx": true, ".wma": true, ".aiff": true,
	".aif": true, ".aifc": true, ".amr": true, ".au": true, ".snd": true,
	".caf": true, ".ac3": true, ".mka": true, ".weba": true,
	// video
	".webm": true, ".mp4": true, ".m4v": true, ".mov": true, ".mkv": true,
	".avi": true, ".wmv": true, ".flv": true, ".mpeg": true, ".mpg": true,
	".3gp": true, ".3g2": true, ".ts": true, ".mts": true, ".m2ts": true,
	".ogv": true, ".dv": true, ".mxf": true,
}

// IsMediaExt reports whether name ends in a common audio or video extension,
// ignoring case. Only the name is looked at, never the content.
func IsMediaExt(name string) bool {
	return mediaExts[strings.ToLower(filepath.Ext(name))]
}
