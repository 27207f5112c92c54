package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/scribeq/scribeq/pkg/query"
)

const deadLettersShown = 200

type deadLettersData struct {
	Rows     []query.DeadLetter
	All      bool
	Replayed string // the id just replayed, for the message
	More     bool
}

func (s *Server) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all") == "1"
	rows, err := s.db.DeadLetters(r.Context(), deadLettersShown+1, all)
	if err != nil {
		s.internal(w, r, "listing dead letters", err)
		return
	}
	d := deadLettersData{Rows: rows, All: all}
	if len(rows) > deadLettersShown {
		d.Rows, d.More = rows[:deadLettersShown], true
	}
	if id, err := strconv.ParseInt(r.URL.Query().Get("replayed"), 10, 64); err == nil {
		d.Replayed = strconv.FormatInt(id, 10)
	}
	s.render(w, r, "deadletters", d)
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	subject, err := s.ctl.ReplayDeadLetter(r.Context(), id)
	if errors.Is(err, query.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "There is no dead letter "+strconv.FormatInt(id, 10)+".")
		return
	}
	if err != nil {
		s.internal(w, r, "replaying the dead letter", err)
		return
	}
	s.log.Info("console: dead letter replayed", "id", id, "subject", subject, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/dead-letters?replayed="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}
