package emulator

import (
	"net/http"
)

// lookup returns the finished, retained transcript with id, or nil. A job
// still processing is not found yet, as the API has nothing to return.
func (s *Server) lookup(id string) *result {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.transcripts[id]
	if !ok || !res.ready || !res.retain {
		return nil
	}
	return res
}

func notFound(id string) *apiError {
	return &apiError{
		status: http.StatusNotFound, typ: "not_found", code: "transcript_not_found",
		message: "Transcript '" + id + "' not found.", param: "transcription_id",
	}
}

func (s *Server) handleGetTranscript(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("request-id", reqID)
	if e := s.authenticate(r); e != nil {
		writeError(w, reqID, e)
		return
	}
	id := r.PathValue("transcription_id")
	res := s.lookup(id)
	if res == nil {
		writeError(w, reqID, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, res.chunk())
}

func (s *Server) handleDeleteTranscript(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("request-id", reqID)
	if e := s.authenticate(r); e != nil {
		writeError(w, reqID, e)
		return
	}
	id := r.PathValue("transcription_id")
	s.mu.Lock()
	res, ok := s.transcripts[id]
	found := ok && res.ready && res.retain
	if found {
		delete(s.transcripts, id)
	}
	s.mu.Unlock()
	if !found {
		writeError(w, reqID, notFound(id))
		return
	}
	// The API documents "any" body for a successful delete; the SDKs
	// accept JSON or nothing.
	writeJSON(w, http.StatusOK, map[string]string{"message": "Transcript deleted successfully"})
}
