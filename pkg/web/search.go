package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/scribeq/scribeq/pkg/export"
	"github.com/scribeq/scribeq/pkg/query"
)

const searchLimit = 50

type searchData struct {
	Q      string
	Form   filterForm
	Error  string
	Hits   []hitView
	Ran    bool
	Filter string
}

type hitView struct {
	query.Hit
	Link    string // the job page, cued at the first matching word
	Speaker string
}

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := strings.TrimSpace(v.Get("q"))
	form, f, err := parseFilter(v, s.cfg.Now())
	d := searchData{Q: q, Form: form, Filter: filterQuery(v)}
	if err != nil {
		d.Error = err.Error()
		s.renderStatus(w, r, http.StatusBadRequest, "search", d)
		return
	}
	if q == "" {
		s.render(w, r, "search", d)
		return
	}
	d.Ran = true
	hits, err := s.db.Search(r.Context(), q, f, searchLimit)
	if errors.Is(err, query.ErrEmptyQuery) {
		d.Error = "Nothing to search for: the query has only common words (such as \"the\"), symbols or exclusions."
		s.renderStatus(w, r, http.StatusBadRequest, "search", d)
		return
	}
	if err != nil {
		s.internal(w, r, "searching", err)
		return
	}
	for _, h := range hits {
		hv := hitView{Hit: h}
		key := h.JobID
		if key == "" {
			key = h.RequestID // a transcript no job claims yet; Show finds it by request id
		}
		hv.Link = "/jobs/" + url.PathEscape(key) + "?t=" + secsParam(h.Start)
		switch {
		case h.Speaker != "":
			hv.Speaker = export.SpeakerLabel(h.Speaker)
		case h.Channel != nil:
			hv.Speaker = "Channel " + strconv.Itoa(*h.Channel+1)
		}
		d.Hits = append(d.Hits, hv)
	}
	s.render(w, r, "search", d)
}
