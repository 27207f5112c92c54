package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/export"
	"github.com/scribeq/scribeq/pkg/query"
)

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func absPath(p string) (string, error) { return filepath.Abs(p) }

// printJob prints a job for people: ids, timings, cost, history, and the
// transcript in speaker turns with their start times.
func printJob(w io.Writer, j *query.Job, row *query.JobRow) {
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	var src struct {
		Path, URL string
		Size      int64
		Duration  float64 `json:"duration_secs"`
	}
	_ = json.Unmarshal(j.Source, &src)
	source := src.Path
	if source == "" {
		source = src.URL
	}
	fmt.Fprintf(w, "job            %s\n", j.JobID)
	fmt.Fprintf(w, "state          %s\n", j.State)
	fmt.Fprintf(w, "source         %s\n", source)
	batch := str(j.BatchID)
	if row != nil && row.BatchName != "" {
		batch = fmt.Sprintf("%s (%s)", row.BatchName, batch)
	}
	fmt.Fprintf(w, "batch          %s\n", batch)
	if row != nil && row.DurationSecs != nil {
		d := clock(*row.DurationSecs)
		if row.DurationEstimated {
			d += " (read from the file)"
		}
		fmt.Fprintf(w, "duration       %s\n", d)
	}
	if row != nil && row.Cost != nil {
		est := ""
		if row.DurationEstimated || j.State != "completed" {
			est = " (estimated)"
		}
		fmt.Fprintf(w, "cost           %s %s%s\n", money(*row.Cost), row.Currency, est)
	}
	fmt.Fprintf(w, "request_id     %s\n", str(j.RequestID))
	fmt.Fprintf(w, "transcription  %s\n", str(j.TranscriptionID))
	fmt.Fprintf(w, "options        %s\n", string(j.Options))
	if string(j.Metadata) != "{}" && len(j.Metadata) > 0 {
		fmt.Fprintf(w, "metadata       %s\n", string(j.Metadata))
	}
	fmt.Fprintf(w, "convert calls  %d\n", j.ConvertCalls)
	fmt.Fprintf(w, "queued         %s\n", ts(j.QueuedAt))
	fmt.Fprintf(w, "submitted      %s\n", ts(j.SubmittedAt))
	if j.CompletedAt != nil {
		fmt.Fprintf(w, "completed      %s\n", ts(j.CompletedAt))
	}
	if j.FailedAt != nil {
		fmt.Fprintf(w, "failed         %s  %s\n", ts(j.FailedAt), str(j.Error))
	}
	if len(j.History) > 0 {
		fmt.Fprintln(w, "history")
		for _, h := range j.History {
			fmt.Fprintf(w, "  %s  %-9s -> %-9s %s %s\n", h.At.Local().Format(time.DateTime+".000"), str(h.From), h.To, str(h.Process), str(h.Reason))
		}
	}
	if t := j.Transcript; t != nil {
		lang := str(t.LanguageCode)
		dur := ""
		if t.AudioDurationSecs != nil {
			dur = fmt.Sprintf(", %.1f s of audio", *t.AudioDurationSecs)
		}
		fmt.Fprintf(w, "transcript     (%s%s)\n", lang, dur)
		var words []elevenlabs.Word
		if json.Unmarshal(t.Words, &words) != nil || len(words) == 0 ||
			export.Render(w, export.TXT, &export.Doc{Words: words}, export.Options{Timestamps: true}) != nil {
			fmt.Fprintf(w, "%s\n", t.Text)
		}
	}
}
