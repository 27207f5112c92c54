package export

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// File is one of the additional_formats ElevenLabs sent with a transcript,
// decoded.
type File struct {
	// Format is the requested_format: srt, txt, segmented_json, docx, pdf,
	// html.
	Format string
	// Extension is file_extension without a leading dot, reduced to
	// [a-z0-9] (the payload is not trusted to name files); when nothing is
	// left, the format's name, else "bin".
	Extension   string
	ContentType string
	// Channel is the channel_index of the chunk the file came with in a
	// multichannel result, nil for a single-channel result.
	Channel *int
	Content []byte
}

// Name is a file name for the file of a transcript whose other exports are
// named base: base.elevenlabs[.chN].ext, N counting channels from 1.
// Two files of the same format (requested twice with different options)
// get the same name; callers writing several should tell them apart.
func (f File) Name(base string) string {
	ch := ""
	if f.Channel != nil {
		ch = ".ch" + strconv.Itoa(*f.Channel+1)
	}
	return base + ".elevenlabs" + ch + "." + f.Extension
}

type additionalItem struct {
	RequestedFormat string `json:"requested_format"`
	FileExtension   string `json:"file_extension"`
	ContentType     string `json:"content_type"`
	IsBase64Encoded bool   `json:"is_base64_encoded"`
	Content         string `json:"content"`
}

type additionalChunk struct {
	AdditionalFormats []additionalItem `json:"additional_formats"`
	ChannelIndex      *int             `json:"channel_index"`
}

// Additional decodes the additional_formats of a stored transcription (the
// webhook's data.transcription, as the transcripts table keeps it in
// payload): those of a single-channel result, and those of each channel of
// a multichannel one. Base64 content is decoded; other content is returned
// as its UTF-8 bytes. No additional formats is not an error.
func Additional(transcription json.RawMessage) ([]File, error) {
	var top struct {
		additionalChunk
		Transcripts []additionalChunk `json:"transcripts"`
	}
	if err := json.Unmarshal(transcription, &top); err != nil {
		return nil, fmt.Errorf("export: parse additional formats: %w", err)
	}
	var files []File
	add := func(c additionalChunk, ch *int) error {
		for i, it := range c.AdditionalFormats {
			f, err := decodeItem(it, ch)
			if err != nil {
				return fmt.Errorf("export: additional format %d (%s): %w", i, it.RequestedFormat, err)
			}
			files = append(files, f)
		}
		return nil
	}
	if err := add(top.additionalChunk, nil); err != nil {
		return nil, err
	}
	for i, c := range top.Transcripts {
		ch := i
		if c.ChannelIndex != nil {
			ch = *c.ChannelIndex
		}
		if err := add(c, &ch); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func decodeItem(it additionalItem, ch *int) (File, error) {
	f := File{
		Format:      it.RequestedFormat,
		Extension:   extension(it.FileExtension, it.RequestedFormat),
		ContentType: it.ContentType,
		Channel:     ch,
		Content:     []byte(it.Content),
	}
	if it.IsBase64Encoded {
		// Tolerate line-wrapped and unpadded base64.
		s := strings.Join(strings.Fields(it.Content), "")
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			var err2 error
			if b, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
				return File{}, fmt.Errorf("decode base64 content: %w", err)
			}
		}
		f.Content = b
	}
	return f, nil
}

var notExtChar = regexp.MustCompile(`[^a-z0-9]+`)

func extension(ext, format string) string {
	for _, s := range []string{ext, format} {
		s = notExtChar.ReplaceAllString(strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), ".")), "")
		if s != "" && len(s) <= 16 {
			return s
		}
	}
	return "bin"
}
