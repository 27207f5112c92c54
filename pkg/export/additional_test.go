package export_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/export"
)

func TestAdditional(t *testing.T) {
	t.Parallel()
	// A docx is a zip: it starts with PK\x03\x04 and holds bytes that are
	// not valid UTF-8, which must come back exactly.
	docx := append([]byte("PK\x03\x04\x14\x00\x06\x00"), 0xff, 0xfe, 0x00, 0x80, 'w', 'o', 'r', 'd')
	srt := "1\n00:00:00,240 --> 00:00:01,000\nHello & <welcome>\n"
	raw := fmt.Sprintf(`{
		"language_code": "en", "text": "Hello", "words": [],
		"additional_formats": [
			{"requested_format": "docx", "file_extension": "docx",
			 "content_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
			 "is_base64_encoded": true, "content": %q},
			{"requested_format": "srt", "file_extension": ".srt", "content_type": "text/plain",
			 "is_base64_encoded": false, "content": %q}
		]}`, base64.StdEncoding.EncodeToString(docx), srt)

	files, err := export.Additional(json.RawMessage(raw))
	require.NoError(t, err)
	require.Len(t, files, 2)
	require.Equal(t, export.File{
		Format: "docx", Extension: "docx",
		ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		Content:     docx,
	}, files[0])
	require.Equal(t, export.File{Format: "srt", Extension: "srt", ContentType: "text/plain", Content: []byte(srt)}, files[1])
	require.Equal(t, "call.elevenlabs.docx", files[0].Name("call"))
}

func TestAdditionalMultichannel(t *testing.T) {
	t.Parallel()
	raw := `{"transcripts": [
		{"channel_index": 0, "words": [], "additional_formats": [{"requested_format": "txt", "file_extension": "txt", "content": "agent"}]},
		{"channel_index": 1, "words": [], "additional_formats": [{"requested_format": "txt", "file_extension": "txt", "content": "caller"}]}
	]}`
	files, err := export.Additional(json.RawMessage(raw))
	require.NoError(t, err)
	require.Len(t, files, 2)
	require.Equal(t, "agent", string(files[0].Content))
	require.Equal(t, 0, *files[0].Channel)
	require.Equal(t, "caller", string(files[1].Content))
	require.Equal(t, "x.elevenlabs.ch2.txt", files[1].Name("x"))
}

func TestAdditionalEdges(t *testing.T) {
	t.Parallel()
	files, err := export.Additional(json.RawMessage(`{"text": "", "words": []}`))
	require.NoError(t, err)
	require.Empty(t, files)

	// Line-wrapped, unpadded base64 is accepted.
	files, err = export.Additional(json.RawMessage(`{"additional_formats": [
		{"requested_format": "pdf", "file_extension": "pdf", "is_base64_encoded": true, "content": "JVBE\nRi0x"}]}`))
	require.NoError(t, err)
	require.Equal(t, "%PDF-1", string(files[0].Content))

	// The payload does not get to choose where a file goes.
	files, err = export.Additional(json.RawMessage(`{"additional_formats": [
		{"requested_format": "html", "file_extension": "../../etc/x", "content": "<p>"},
		{"requested_format": "segmented_json", "file_extension": "", "content": "{}"},
		{"requested_format": "", "file_extension": "/", "content": ""}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"etcx", "segmentedjson", "bin"},
		[]string{files[0].Extension, files[1].Extension, files[2].Extension})

	_, err = export.Additional(json.RawMessage(`{"additional_formats": [
		{"requested_format": "srt", "content": "ok"},
		{"requested_format": "docx", "is_base64_encoded": true, "content": "not base64!"}]}`))
	require.ErrorContains(t, err, "additional format 1 (docx)")

	_, err = export.Additional(json.RawMessage(`[1, 2]`))
	require.ErrorContains(t, err, "parse additional formats")
}
