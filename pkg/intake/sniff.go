package intake

import (
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/audio"
)

// sniffMedia is the fallback when the prober does not know a format: the
// standard library's content sniffer recognises a few media signatures
// (ID3-tagged MP3, WAV, AIFF, Ogg, MP4, WebM, AVI).
func sniffMedia(head []byte) (audio.Kind, string) {
	if len(head) == 0 {
		return audio.Unknown, ""
	}
	mime, _, _ := strings.Cut(http.DetectContentType(head), ";")
	switch mime {
	case "audio/mpeg":
		return audio.Audio, "mp3"
	case "audio/wave":
		return audio.Audio, "wav"
	case "audio/aiff":
		return audio.Audio, "aiff"
	case "audio/basic":
		return audio.Audio, "au"
	case "application/ogg":
		return audio.Audio, "ogg"
	case "video/mp4":
		return audio.Video, "mp4"
	case "video/webm":
		return audio.Video, "webm"
	case "video/avi":
		return audio.Video, "avi"
	}
	return audio.Unknown, ""
}

// looksLike names what non-media content seems to be, for the skip reason.
func looksLike(head []byte) string {
	mime, _, _ := strings.Cut(http.DetectContentType(head), ";")
	name := map[string]string{
		"application/pdf":              "pdf",
		"text/plain":                   "text",
		"text/html":                    "html",
		"text/xml":                     "xml",
		"application/zip":              "a zip archive",
		"application/x-gzip":           "gzip data",
		"application/x-rar-compressed": "a rar archive",
		"application/postscript":       "postscript",
		"application/wasm":             "webassembly",
		"audio/midi":                   "midi (notes, not sound)",
	}[mime]
	switch {
	case name != "":
	case strings.HasPrefix(mime, "image/"):
		name = strings.TrimPrefix(mime, "image/") + " image"
	case strings.HasPrefix(mime, "font/"):
		name = "a font"
	case mime == "application/octet-stream":
		return "content not recognised"
	default:
		name = mime
	}
	return "looks like " + name
}

// digestIs reports whether an object store digest ("SHA-256=<base64url>")
// is the hex sum.
func digestIs(digest, sum string) bool {
	b, err := jetstream.DecodeObjectDigest(digest)
	return err == nil && hex.EncodeToString(b) == sum
}
