package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/scribeq/scribeq/pkg/control"
	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/export"
	"github.com/scribeq/scribeq/pkg/query"
)

const jobsPerPage = 50

type jobsData struct {
	Form    filterForm
	Error   string
	Rows    []query.JobRow
	Next    string // URL of the next page, "" on the last
	First   string // URL of the first page, "" when on it
	Filter  string // the filter's query string
	Exports []link
}

// link is a labelled URL built in Go, so that its query string is not
// escaped again by the template.
type link struct {
	Format, URL string
}

func exportLinks(prefix, filter string) []link {
	var out []link
	for _, f := range exportFormats {
		u := prefix + f
		if filter != "" {
			u += "?" + filter
		}
		out = append(out, link{f, u})
	}
	return out
}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	form, f, err := parseFilter(v, s.cfg.Now())
	d := jobsData{Form: form, Filter: filterQuery(v)}
	d.Exports = exportLinks("/export/", d.Filter)
	if err != nil {
		d.Error = err.Error()
		s.renderStatus(w, r, http.StatusBadRequest, "jobs", d)
		return
	}
	limit := jobsPerPage
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 {
		limit = min(n, 500)
	}
	rows, next, err := s.db.Jobs(r.Context(), f, query.Page{Limit: limit, After: v.Get("after"), Sort: form.Sort})
	switch {
	case errors.Is(err, query.ErrBadCursor):
		d.Error = "That page link is out of date; showing the first page."
		rows, next, err = s.db.Jobs(r.Context(), f, query.Page{Limit: limit, Sort: form.Sort})
	case err != nil && strings.Contains(err.Error(), "unknown sort"):
		d.Error = "Unknown sort order; sorting by when jobs were queued."
		form.Sort, d.Form.Sort = "", ""
		rows, next, err = s.db.Jobs(r.Context(), f, query.Page{Limit: limit})
	}
	if err != nil {
		s.internal(w, r, "listing jobs", err)
		return
	}
	d.Rows = rows
	if next != "" {
		d.Next = "/jobs?" + joinQuery(d.Filter, "after="+next)
	}
	if v.Get("after") != "" {
		d.First = "/jobs?" + d.Filter
	}
	s.render(w, r, "jobs", d)
}

func joinQuery(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "&" + b
}

type kv struct{ Key, Value string }

type jobData struct {
	Job       *query.Job
	Row       *query.JobRow
	Source    event.Source
	Options   []kv
	Metadata  []kv
	Turns     []turn
	Timed     bool
	Text      string // the transcript's text when it has no words
	HasAudio  bool
	Cue       string // ?t= as given, "" for none
	Done      string
	CanRetry  bool
	CanCancel bool
	Formats   []string
}

// exportFormats are offered as downloads.
var exportFormats = []string{"srt", "vtt", "txt", "json", "csv"}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := s.db.Show(r.Context(), id, true)
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "There is no job "+id+".")
		return
	}
	if err != nil {
		s.internal(w, r, "reading the job", err)
		return
	}
	d := jobData{Job: j, Formats: exportFormats}
	if rows, _, err := s.db.Jobs(r.Context(), query.Filter{JobIDs: []string{j.JobID}}, query.Page{Limit: 1}); err == nil && len(rows) == 1 {
		d.Row = &rows[0]
	} else if err != nil {
		s.internal(w, r, "reading the job", err)
		return
	}
	_ = json.Unmarshal(j.Source, &d.Source)
	d.Options = flatten(j.Options)
	d.Metadata = flatten(j.Metadata)
	d.HasAudio = s.cfg.Queue != nil && d.Source.Object != ""
	if j.Transcript != nil {
		d.Turns, err = turns(j.Transcript.Words)
		if err != nil {
			s.log.Warn("console: transcript words unreadable; showing the text", "job_id", j.JobID, "err", err)
		}
		for _, t := range d.Turns {
			d.Timed = d.Timed || t.Timed
		}
		if len(d.Turns) == 0 {
			d.Text = j.Transcript.Text
		}
	}
	if t, err := strconv.ParseFloat(r.URL.Query().Get("t"), 64); err == nil && t >= 0 {
		d.Cue = secsParam(t)
	}
	switch r.URL.Query().Get("done") {
	case "retried":
		d.Done = "A new attempt is queued. The page shows it once the sink has recorded it."
	case "canceled":
		d.Done = "The job is canceled. The page shows it once the sink has recorded it."
	}
	d.CanRetry = s.cfg.Write && (j.State == "failed" || j.State == "canceled")
	d.CanCancel = s.cfg.Write && j.State != "completed" && j.State != "canceled"
	s.render(w, r, "job", d)
}

// flatten lists a JSON object's fields, sorted, values as JSON unless they
// are strings.
func flatten(raw json.RawMessage) []kv {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make([]kv, 0, len(m))
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		}
		out = append(out, kv{k, s})
	}
	slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out, err := s.ctl.Retry(r.Context(), []string{id}, "")
	s.acted(w, r, id, "retried", out, err)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	out, err := s.ctl.Cancel(r.Context(), []string{id}, "canceled from the web console", nil)
	s.acted(w, r, id, "canceled", out, err)
}

// acted reports the outcome of an operation on one job: back to its page
// when it was done, the reason when not.
func (s *Server) acted(w http.ResponseWriter, r *http.Request, id, verb string, out []control.Outcome, err error) {
	if err != nil {
		s.internal(w, r, "acting on the job", err)
		return
	}
	for _, o := range out {
		if o.JobID != id {
			continue
		}
		if !o.Done {
			s.fail(w, r, http.StatusConflict, "Job "+id+" was not "+verb+": "+o.Reason+".")
			return
		}
		s.log.Info("console: job "+verb, "job_id", id, "remote", r.RemoteAddr)
		http.Redirect(w, r, "/jobs/"+url.PathEscape(id)+"?done="+verb, http.StatusSeeOther)
		return
	}
	s.fail(w, r, http.StatusNotFound, "There is no job "+id+".")
}

func (s *Server) exportJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	format, err := export.ParseFormat(r.PathValue("format"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "Unknown format: "+r.PathValue("format")+". Try srt, vtt, txt, json or csv.")
		return
	}
	var found bool
	var body []byte
	var name string
	err = s.db.Transcripts(r.Context(), query.Filter{JobIDs: []string{id}}, func(t *query.TranscriptRow) error {
		found = true
		name = t.FileBase() + "." + format.Extension()
		var b strings.Builder
		if err := renderTranscript(&b, format, t); err != nil {
			return err
		}
		body = []byte(b.String())
		return nil
	})
	switch {
	case errors.Is(err, export.ErrNoTimestamps):
		s.fail(w, r, http.StatusConflict, "This transcript was made without timestamps, so it has no "+string(format)+"; txt, json and csv work.")
		return
	case err != nil:
		s.internal(w, r, "exporting the transcript", err)
		return
	case !found:
		s.fail(w, r, http.StatusNotFound, "Job "+id+" has no transcript (yet).")
		return
	}
	w.Header().Set("Content-Type", format.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
