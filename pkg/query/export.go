package query

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// exportPage is how many transcripts one export query reads. Each page is
// its own short statement, so an export of any size stays under the
// statement timeout and holds no snapshot open for long.
const exportPage = 100

// TranscriptRow is one job's transcript as export renders it.
type TranscriptRow struct {
	JobID           string `json:"job_id"`
	RequestID       string `json:"request_id"`
	TranscriptionID string `json:"transcription_id,omitempty"`
	BatchID         string `json:"batch_id,omitempty"`
	BatchName       string `json:"batch_name,omitempty"`
	// Name is the audio's file name, else its path, URL or the job id.
	Name         string            `json:"name"`
	Path         string            `json:"path,omitempty"`
	URL          string            `json:"url,omitempty"`
	Archive      string            `json:"archive,omitempty"`
	Entry        string            `json:"entry,omitempty"`
	Language     string            `json:"language,omitempty"`
	DurationSecs *float64          `json:"duration_secs,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	CompletedAt  *time.Time        `json:"completed_at,omitempty"`
	Text         string            `json:"text"`
	// Words is transcripts.words: the words, spacing and audio events of
	// every channel, each with its times, speaker and channel.
	Words json.RawMessage `json:"words"`
	// Transcription is ElevenLabs' transcription object exactly as
	// received (additional_formats included, per channel for multichannel
	// results).
	Transcription json.RawMessage `json:"transcription"`
}

// Transcripts calls fn with the transcript of every job f selects that has
// one, in job id order, until fn returns an error (which Transcripts then
// returns). Rows are read a page at a time, so memory stays flat however
// many transcripts there are; fn must not keep the row's slices beyond the
// call.
func (d *DB) Transcripts(ctx context.Context, f Filter, fn func(*TranscriptRow) error) error {
	after := ""
	for {
		var p params
		where, err := f.where(&p, "s")
		if err != nil {
			return err
		}
		rows, err := d.pool.Query(ctx, `
			SELECT s.job_id, t.request_id, coalesce(t.transcription_id, ''), coalesce(s.batch_id, ''),
			       coalesce(s.batch_name, ''), s.name, coalesce(s.source_path, ''), coalesce(s.source_url, ''),
			       coalesce(s.archive, ''), coalesce(s.entry, ''), coalesce(t.language_code, ''), s.audio_secs,
			       s.metadata, s.completed_at, t.text, t.words, t.payload
			FROM job_summary s JOIN transcripts t ON t.request_id = s.request_id
			WHERE `+where+` AND s.job_id > `+p.add(after)+`
			ORDER BY s.job_id
			LIMIT `+p.add(exportPage), p...)
		if err != nil {
			return fmt.Errorf("query: export transcripts: %w", err)
		}
		n := 0
		var r TranscriptRow
		for rows.Next() {
			r = TranscriptRow{}
			if err := rows.Scan(&r.JobID, &r.RequestID, &r.TranscriptionID, &r.BatchID, &r.BatchName, &r.Name, &r.Path,
				&r.URL, &r.Archive, &r.Entry, &r.Language, &r.DurationSecs, &r.Metadata, &r.CompletedAt, &r.Text,
				&r.Words, &r.Transcription); err != nil {
				rows.Close()
				return fmt.Errorf("query: export transcripts: %w", err)
			}
			n++
			after = r.JobID
			if err := fn(&r); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("query: export transcripts: %w", err)
		}
		if n < exportPage {
			return nil
		}
	}
}

// FileBase names a transcript's files, for `scribeq export --out` and the
// console's downloads alike: the audio's name without its extension, and
// the job id's first block so that equal names do not clash.
func (t *TranscriptRow) FileBase() string {
	name := strings.TrimSuffix(filepath.Base(t.Name), filepath.Ext(t.Name))
	name = strings.Map(func(r rune) rune {
		if r < ' ' || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		name = "transcript"
	}
	return name + "." + t.JobID[:min(8, len(t.JobID))]
}
