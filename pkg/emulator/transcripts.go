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
	s.mu.Lock()
	s.stats.TranscriptGets++
	var fault *apiError
	switch {
	case res == nil:
	case s.lostLocked(res):
		s.stats.TranscriptsLost++
		res = nil
	case s.chance(s.faults.TranscriptErrors):
		s.stats.TranscriptErrors++
		fault = statusError([]int{500, 502, 503}[s.rng.IntN(3)])
	}
	s.mu.Unlock()
	switch {
	case fault != nil:
		writeError(w, reqID, fault)
	case res == nil:
		writeError(w, reqID, notFound(id))
	default:
		writeJSON(w, http.StatusOK, res.chunk())
	}
}

// lostLocked reports whether a finished transcript is lost at ElevenLabs
// (LostTranscripts), drawing it the first time; s.mu held.
func (s *Server) lostLocked(res *result) bool {
	if !res.lostDrawn {
		res.lostDrawn = true
		res.lost = s.chance(s.faults.LostTranscripts)
	}
	return res.lost
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
	found := ok && res.ready && res.retain && !s.lostLocked(res)
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
