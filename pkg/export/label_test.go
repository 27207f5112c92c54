package export_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/export"
)

func TestSpeakerLabel(t *testing.T) {
	require.Equal(t, "Speaker 1", export.SpeakerLabel("speaker_0"))
	require.Equal(t, "Speaker 12", export.SpeakerLabel("speaker_11"))
	require.Equal(t, "agent", export.SpeakerLabel("agent"))
	require.Equal(t, "speaker_x", export.SpeakerLabel("speaker_x"))
}
