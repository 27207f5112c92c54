package web

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
	"github.com/scribeq/scribeq/pkg/query"
)

// renderTranscript writes t in format with export's default layout, as
// `scribeq export` does without options.
func renderTranscript(w io.Writer, format export.Format, t *query.TranscriptRow) error {
	var words []elevenlabs.Word
	if err := json.Unmarshal(t.Words, &words); err != nil {
		return fmt.Errorf("decode words of job %s: %w", t.JobID, err)
	}
	doc := &export.Doc{JobID: t.JobID, RequestID: t.RequestID, TranscriptionID: t.TranscriptionID,
		Language: t.Language, DurationSecs: t.DurationSecs, Words: words}
	return export.Render(w, format, doc, export.Options{})
}

// exportZip streams every transcript the filter selects, rendered in one
// format, as a zip. The transcripts are read a page at a time, so the
// archive's size does not matter; an error half-way can only be logged and
// noted inside the zip, since the status line has gone out.
func (s *Server) exportZip(w http.ResponseWriter, r *http.Request) {
	format, err := export.ParseFormat(r.PathValue("format"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "Unknown format: "+r.PathValue("format")+". Try srt, vtt, txt, json or csv.")
		return
	}
	_, f, err := parseFilter(r.URL.Query(), s.cfg.Now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q",
		"scribeq-"+string(format)+"-"+s.cfg.Now().UTC().Format("20060102-150405")+".zip"))
	w.Header().Set("Cache-Control", "no-store")
	zw := zip.NewWriter(w)
	var skipped []string
	n := 0
	err = s.db.Transcripts(r.Context(), f, func(t *query.TranscriptRow) error {
		var b strings.Builder
		err := renderTranscript(&b, format, t)
		if errors.Is(err, export.ErrNoTimestamps) {
			skipped = append(skipped, t.Name+" (job "+t.JobID+"): transcribed without timestamps")
			return nil
		}
		if err != nil {
			return err
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: t.FileBase() + "." + format.Extension(), Method: zip.Deflate,
			Modified: modified(t.CompletedAt)})
		if err != nil {
			return err
		}
		n++
		_, err = io.WriteString(fw, b.String())
		return err
	})
	if err != nil {
		s.log.Error("console: export zip", "format", format, "err", err)
		skipped = append(skipped, "the export stopped early; the console's log says why")
	}
	if len(skipped) > 0 || n == 0 {
		if fw, err := zw.Create("NOT-EXPORTED.txt"); err == nil {
			if n == 0 && len(skipped) == 0 {
				skipped = append(skipped, "no transcript matches the filter")
			}
			_, _ = io.WriteString(fw, strings.Join(skipped, "\n")+"\n")
		}
	}
	if err := zw.Close(); err != nil {
		s.log.Warn("console: export zip", "err", err)
	}
}

func modified(t *time.Time) time.Time {
	if t == nil {
		return time.Now()
	}
	return *t
}
