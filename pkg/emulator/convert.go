package emulator

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// convertRequest is a validated POST /v1/speech-to-text.
type convertRequest struct {
	model     string
	input     string // file | source_url | cloud_storage_url
	sourceURL string // source_url or cloud_storage_url
	opts      renderOptions
	webhook   bool
	multi     bool            // use_multi_channel
	metadata  json.RawMessage // compact object, nil when not sent
	retain    bool            // false with enable_logging=false: nothing to GET later
}

// result is an accepted job. Its transcript is rendered on demand from src
// and opts, so a 10-hour file costs a few hundred bytes until asked for.
type result struct {
	requestID       string
	transcriptionID string
	src             source
	opts            renderOptions
	metadata        json.RawMessage
	retain          bool
	slots           int  // counted against MaxConcurrent while processing
	ready           bool // processing finished: GET may return it
	// lostDrawn and lost: whether LostTranscripts made this transcript
	// lost, drawn at its first GET or DELETE.
	lostDrawn, lost bool
}

func (res *result) chunk() chunkModel { return render(res.src, res.opts, res.transcriptionID) }

func (s *Server) handleConvert(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("request-id", reqID)
	call := Call{At: s.cfg.Now(), RequestID: reqID}
	refuse := func(e *apiError) {
		call.Status, call.Error = e.status, e.code
		s.record(call)
		s.log.Info("emulator: convert refused", "request_id", reqID, "job_id", call.JobID,
			"status", e.status, "code", e.code, "param", e.param, "message", e.message)
		writeError(w, reqID, e)
	}
	if e := s.authenticate(r); e != nil {
		refuse(e)
		return
	}
	if s.isClosed() {
		refuse(unavailable())
		return
	}
	f, e := s.readForm(w, r)
	if e != nil {
		refuse(e)
		return
	}
	if f.file != nil {
		call.Input, call.Bytes, call.SHA256 = "file", f.file.size, hex.EncodeToString(f.file.sum[:])
	}
	call.JobID = jobIDOf(f)
	req, e := s.parseConvert(r, f)
	if e != nil {
		refuse(e)
		return
	}
	call.Input, call.Webhook = req.input, req.webhook

	src := urlSource(req.sourceURL)
	if req.input == "file" {
		src = f.file.source()
	}
	call.AudioDurationSecs = round3(src.duration)
	res := &result{
		requestID: reqID, transcriptionID: newTranscriptionID(),
		src: src, opts: req.opts, metadata: req.metadata, retain: req.retain,
		slots: s.slotsFor(src, req.multi),
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		refuse(unavailable())
		return
	}
	if p := s.drawRefusal(); p != nil {
		s.mu.Unlock()
		call.Faults = p.names
		maps.Copy(w.Header(), p.headers)
		refuse(p.refusal)
		return
	}
	if limit := s.cfg.MaxConcurrent; limit > 0 && s.slots+res.slots > limit {
		s.setConcurrencyHeaders(w, s.slots)
		s.stats.TooManyConcurrent++
		s.mu.Unlock()
		refuse(tooManyConcurrent(limit))
		return
	}
	p := s.drawAccepted(req.webhook)
	s.slots += res.slots
	s.stats.PeakSlots = max(s.stats.PeakSlots, s.slots)
	s.setConcurrencyHeaders(w, s.slots)
	s.wg.Add(1)
	s.transcripts[res.transcriptionID] = res
	call.Status, call.Accepted, call.TranscriptionID = http.StatusOK, true, res.transcriptionID
	call.Slots, call.Faults = res.slots, p.names
	if req.webhook {
		call.Delivery = "pending"
		s.stats.WebhooksPending++
	}
	idx := s.recordLocked(call)
	s.mu.Unlock()

	delay := s.processingTime(src.duration)
	s.log.Info("emulator: convert accepted", "request_id", reqID, "transcription_id", res.transcriptionID,
		"job_id", call.JobID, "webhook", req.webhook, "input", req.input, "bytes", call.Bytes,
		"audio_secs", call.AudioDurationSecs, "slots", res.slots, "ready_in", delay.String(), "faults", p.names)

	if req.webhook {
		if p.first {
			// Processing is skipped: the point is a webhook that overtakes
			// the answer, not a slow one.
			s.process(idx, res, 0, p)
		} else {
			go s.process(idx, res, delay, p)
		}
		s.answer(w, r, idx, p, func() {
			writeJSON(w, http.StatusOK, webhookAck{
				Message: "Request processed successfully", RequestID: reqID, TranscriptionID: res.transcriptionID,
			})
		})
		return
	}
	ok := sleep(r.Context(), s.base, delay)
	s.finish(res, ok)
	s.wg.Done()
	if !ok {
		writeError(w, reqID, unavailable())
		return
	}
	s.answer(w, r, idx, p, func() { writeJSON(w, http.StatusOK, res.chunk()) })
}

// answer writes an accepted call's answer, unless a fault keeps it from
// the client: a stall holds it back (a client that gives up meanwhile never
// gets it), a reset closes the connection instead.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, idx int, p *plan, write func()) {
	lost := func(why string) {
		s.mu.Lock()
		c := &s.ledger[idx]
		c.AnswerLost = true
		reqID, jobID := c.RequestID, c.JobID
		s.stats.AnswersLost++
		s.mu.Unlock()
		s.log.Info("emulator: accepted call not answered", "request_id", reqID, "job_id", jobID, "why", why)
		resetConn(w)
	}
	if p.stall && !sleep(r.Context(), s.base, p.stallFor) {
		lost("client gave up during a stall")
		return
	}
	if p.reset {
		lost("reset_after_accept")
		return
	}
	write()
	now := s.cfg.Now()
	s.updateCall(idx, func(c *Call) { c.AnsweredAt = now })
}

// resetConn drops the connection without an answer. On HTTP/1 the socket
// is closed with SO_LINGER 0, so the client sees a reset, as when a proxy
// dies; where the connection cannot be taken over (HTTP/2), the stream is
// aborted.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type webhookAck struct {
	Message         string `json:"message"`
	RequestID       string `json:"request_id"`
	TranscriptionID string `json:"transcription_id"`
}

func unavailable() *apiError {
	return &apiError{
		status: http.StatusServiceUnavailable, typ: "service_unavailable", code: "service_unavailable",
		message: "The emulator is shutting down.",
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// setConcurrencyHeaders mirrors the API's concurrency headers.
func (s *Server) setConcurrencyHeaders(w http.ResponseWriter, current int) {
	if s.cfg.MaxConcurrent > 0 {
		w.Header().Set("current-concurrent-requests", itoa(current))
		w.Header().Set("maximum-concurrent-requests", itoa(s.cfg.MaxConcurrent))
	}
}

// slotsFor is what a job counts against the plan's limit: ElevenLabs
// splits a file longer than 8 minutes into up to 4 parallel chunks, and
// counts each channel of a multichannel job. A job never counts more than
// the whole limit, or it could never run.
func (s *Server) slotsFor(src source, multichannel bool) int {
	n := min(4, max(1, int(math.Ceil(src.duration/480))))
	if multichannel {
		n *= max(1, src.channels)
	}
	if s.cfg.MaxConcurrent > 0 {
		n = min(n, s.cfg.MaxConcurrent)
	}
	return n
}

// finish ends a job's processing: its transcript becomes retrievable (when
// ok) and its slots are free, before any webhook goes out, so a client
// that reacts to the webhook by sending the next job finds room for it.
func (s *Server) finish(res *result, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res.ready = res.ready || ok
	s.slots -= res.slots
}

func (s *Server) processingTime(durationSecs float64) time.Duration {
	return s.cfg.WebhookDelay + time.Duration(s.cfg.SecondsPerAudioSecond*durationSecs*float64(time.Second))
}

// sleep waits d unless a or b ends first; it reports whether d passed.
func sleep(a, b context.Context, d time.Duration) bool {
	if d <= 0 {
		return a.Err() == nil && b.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.Done():
		return false
	case <-b.Done():
		return false
	}
}

// authenticate checks xi-api-key. The 401 bodies follow the API's
// (help.elevenlabs.io article 19572237925521, with the newer type/code).
func (s *Server) authenticate(r *http.Request) *apiError {
	key := r.Header.Get("xi-api-key")
	if key == "" {
		return &apiError{
			status: http.StatusUnauthorized, typ: "authentication_error", code: "needs_authorization",
			message: "Neither authorization header nor xi-api-key received, please provide one.",
		}
	}
	if len(s.cfg.APIKeys) == 0 {
		return nil
	}
	ok := 0
	for _, k := range s.cfg.APIKeys {
		ok |= subtle.ConstantTimeCompare([]byte(k), []byte(key))
	}
	if ok == 1 {
		return nil
	}
	return &apiError{
		status: http.StatusUnauthorized, typ: "authentication_error", code: "invalid_api_key",
		message: "Invalid API key",
	}
}

// jobIDOf reads webhook_metadata.job_id for the ledger, whatever else is
// wrong with the request.
func jobIDOf(f *form) string {
	v, ok := f.last("webhook_metadata")
	if !ok {
		return ""
	}
	md, err := decodeMetadata(v)
	if err != nil {
		return ""
	}
	return elevenlabs.MetadataString(md, "job_id")
}

// parseConvert validates the form as the API does. Fields are text parts,
// as the SDKs send them (booleans "true"/"false", numbers in decimal, one
// part per keyterm); unknown fields are ignored.
func (s *Server) parseConvert(r *http.Request, f *form) (*convertRequest, *apiError) {
	lim := s.cfg.Limits
	req := &convertRequest{retain: true}

	model, ok := f.last("model_id")
	switch {
	case !ok:
		return nil, invalid("model_id", "Field 'model_id' is required.")
	case model == "scribe_v2_realtime":
		return nil, invalid("model_id", "The model 'scribe_v2_realtime' is only available through the realtime WebSocket API; use one of "+strings.Join(lim.Models, ", ")+".")
	case !slices.Contains(lim.Models, model):
		return nil, invalid("model_id", "Invalid model_id '"+model+"'. Supported models: "+strings.Join(lim.Models, ", ")+".")
	}
	req.model = model

	sourceURL, hasSource := f.last("source_url")
	cloudURL, hasCloud := f.last("cloud_storage_url")
	inputs := 0
	for _, set := range []bool{f.files > 0, hasSource, hasCloud} {
		if set {
			inputs++
		}
	}
	if inputs != 1 || f.files > 1 {
		return nil, invalid("file", "Exactly one of file, source_url or cloud_storage_url must be provided.")
	}
	switch {
	case f.file != nil:
		req.input = "file"
		if f.file.size == 0 {
			return nil, invalid("file", "The uploaded file is empty.")
		}
	case hasSource:
		req.input, req.sourceURL = "source_url", sourceURL
		if u, err := url.Parse(sourceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, invalid("source_url", "source_url must be an http(s) URL.")
		}
	default:
		req.input, req.sourceURL = "cloud_storage_url", cloudURL
		if u, err := url.Parse(cloudURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, invalid("cloud_storage_url", "cloud_storage_url must be an HTTPS URL.")
		}
	}

	if v, ok := r.URL.Query()["enable_logging"]; ok && len(v) > 0 && v[0] != "" {
		b, ok := parseBool(v[0])
		if !ok {
			return nil, invalid("enable_logging", "enable_logging must be a boolean.")
		}
		req.retain = b
	}

	bools := map[string]bool{}
	for _, name := range []string{"diarize", "webhook", "tag_audio_events", "use_multi_channel",
		"detect_speaker_roles", "no_verbatim", "use_speaker_library"} {
		v, ok := f.last(name)
		if !ok {
			continue
		}
		b, ok := parseBool(v)
		if !ok {
			return nil, invalid(name, "'"+name+"' must be a boolean, got '"+v+"'.")
		}
		bools[name] = b
	}
	req.opts.diarize, req.webhook, req.multi = bools["diarize"], bools["webhook"], bools["use_multi_channel"]

	if v, ok := f.last("language_code"); ok {
		if !isLanguageCode(v) {
			return nil, invalid("language_code", "language_code must be an ISO-639-1 or ISO-639-3 code, got '"+v+"'.")
		}
		req.opts.language = v
	}

	numSpeakers := 0
	if v, ok := f.last("num_speakers"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > lim.MaxSpeakers {
			return nil, invalid("num_speakers", "num_speakers must be an integer between 1 and "+itoa(lim.MaxSpeakers)+", got '"+v+"'.")
		}
		numSpeakers = n
	}

	req.opts.granularity = "word"
	if v, ok := f.last("timestamps_granularity"); ok {
		if v != "none" && v != "word" && v != "character" {
			return nil, invalid("timestamps_granularity", "timestamps_granularity must be one of none, word, character, got '"+v+"'.")
		}
		req.opts.granularity = v
	}

	if v, ok := f.last("diarization_threshold"); ok {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(x) || x < 0 || x > 1 {
			return nil, invalid("diarization_threshold", "diarization_threshold must be a number between 0 and 1, got '"+v+"'.")
		}
		if !req.opts.diarize || numSpeakers != 0 {
			return nil, invalid("diarization_threshold", "diarization_threshold can only be set when diarize=true and num_speakers is not set.")
		}
	}

	if bools["use_multi_channel"] {
		if req.opts.diarize {
			return nil, invalid("diarize", "diarize cannot be used together with use_multi_channel.")
		}
		if numSpeakers != 0 {
			return nil, invalid("num_speakers", "num_speakers cannot be used together with use_multi_channel.")
		}
	}
	if v, ok := f.last("multichannel_output_style"); ok && v != "separate" && v != "combined" {
		return nil, invalid("multichannel_output_style", "multichannel_output_style must be separate or combined, got '"+v+"'.")
	}
	if bools["detect_speaker_roles"] {
		if !req.opts.diarize {
			return nil, invalid("detect_speaker_roles", "detect_speaker_roles requires diarize=true.")
		}
		if bools["use_multi_channel"] {
			return nil, invalid("detect_speaker_roles", "detect_speaker_roles cannot be used together with use_multi_channel.")
		}
	}
	if bools["no_verbatim"] && model != "scribe_v2" {
		return nil, invalid("no_verbatim", "The 'no_verbatim' parameter is only supported with the 'scribe_v2' model. You specified '"+model+"'.")
	}

	if v, ok := f.last("temperature"); ok {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(x) || x < 0 || x > 2 {
			return nil, invalid("temperature", "temperature must be a number between 0 and 2, got '"+v+"'.")
		}
	}
	if v, ok := f.last("seed"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 || n > 2147483647 {
			return nil, invalid("seed", "seed must be an integer between 0 and 2147483647, got '"+v+"'.")
		}
	}
	if v, ok := f.last("file_format"); ok && v != "pcm_s16le_16" && v != "other" {
		return nil, invalid("file_format", "file_format must be pcm_s16le_16 or other, got '"+v+"'.")
	}
	if v, ok := f.last("additional_formats"); ok {
		if e := checkAdditionalFormats(v); e != nil {
			return nil, e
		}
	}

	if e := s.checkKeyterms(f.fields["keyterms"], model); e != nil {
		return nil, e
	}

	if v, ok := f.last("webhook_id"); ok && v != "" && !req.webhook {
		return nil, invalid("webhook_id", "webhook_id is only valid when webhook is set to true.")
	}
	if v, ok := f.last("webhook_metadata"); ok {
		if len(v) > lim.MaxMetadataBytes {
			return nil, invalid("webhook_metadata", "webhook_metadata must be at most "+formatBytes(int64(lim.MaxMetadataBytes))+".")
		}
		md, err := decodeMetadata(v)
		if err != nil {
			return nil, invalid("webhook_metadata", "webhook_metadata must be a JSON object: "+err.Error()+".")
		}
		if d := depth(md); d > lim.MaxMetadataDepth {
			return nil, invalid("webhook_metadata", "webhook_metadata is nested "+itoa(d)+" levels deep; at most "+itoa(lim.MaxMetadataDepth)+" are allowed.")
		}
		req.metadata = md
	}
	if req.webhook && s.cfg.WebhookURL == "" {
		return nil, &apiError{
			status: http.StatusBadRequest, typ: "validation_error", code: "no_webhooks_configured",
			message: "webhook=true, but no speech-to-text webhook is configured for this workspace.",
			param:   "webhook",
		}
	}
	return req, nil
}

// parseBool accepts what pydantic accepts for a form boolean.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "t", "y":
		return true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}

func isLanguageCode(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// checkKeyterms applies the documented keyterm rules. The SDKs send one
// part per term; a single part holding a JSON array is accepted too.
func (s *Server) checkKeyterms(values []string, model string) *apiError {
	if len(values) == 0 {
		return nil
	}
	lim := s.cfg.Limits
	terms := values
	if len(values) == 1 && strings.HasPrefix(strings.TrimSpace(values[0]), "[") {
		var list []string
		if err := json.Unmarshal([]byte(values[0]), &list); err == nil {
			terms = list
		}
	}
	if !slices.Contains(lim.KeytermModels, model) {
		return invalid("keyterms", "The 'keyterms' parameter is only supported with the '"+strings.Join(lim.KeytermModels, "', '")+"' model. You specified '"+model+"'.")
	}
	if len(terms) > lim.MaxKeyterms {
		return invalid("keyterms", "At most "+itoa(lim.MaxKeyterms)+" keyterms are allowed, got "+itoa(len(terms))+".")
	}
	for _, t := range terms {
		switch {
		case strings.TrimSpace(t) == "":
			return invalid("keyterms", "Keyterms must not be empty.")
		case len([]rune(t)) >= lim.MaxKeytermChars:
			return invalid("keyterms", "Each keyterm must be shorter than "+itoa(lim.MaxKeytermChars)+" characters: '"+t+"'.")
		case len(strings.Fields(t)) > lim.MaxKeytermWords:
			return invalid("keyterms", "Each keyterm may have at most "+itoa(lim.MaxKeytermWords)+" words: '"+t+"'.")
		case strings.ContainsAny(t, `<>{}[]\`):
			return invalid("keyterms", `Keyterms must not contain any of <>{}[]\: '`+t+"'.")
		}
	}
	return nil
}

var exportFormats = []string{"srt", "txt", "segmented_json", "docx", "pdf", "html"}

// checkAdditionalFormats validates the export options. They are accepted
// but not rendered.
func checkAdditionalFormats(v string) *apiError {
	var items []map[string]any
	if err := json.Unmarshal([]byte(v), &items); err != nil {
		return invalid("additional_formats", "additional_formats must be a JSON list of export options.")
	}
	for _, it := range items {
		f, _ := it["format"].(string)
		if !slices.Contains(exportFormats, f) {
			return invalid("additional_formats", "Unknown export format '"+f+"'; use one of "+strings.Join(exportFormats, ", ")+".")
		}
	}
	return nil
}

// decodeMetadata returns webhook_metadata as a compact JSON object. It
// arrives as a form field holding the object's JSON, or (double encoded) a
// JSON string holding it.
func decodeMetadata(v string) (json.RawMessage, error) {
	raw := bytes.TrimSpace([]byte(v))
	if len(raw) > 0 && raw[0] == '"' {
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace([]byte(inner))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errNotObject
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

var errNotObject = errors.New("not an object")

// depth counts nesting: {"a":1} is 1, {"a":{"b":1}} and {"a":[1]} are 2.
func depth(raw json.RawMessage) int {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	var walk func(any) int
	walk = func(v any) int {
		d := 0
		switch t := v.(type) {
		case map[string]any:
			for _, c := range t {
				d = max(d, walk(c))
			}
			return d + 1
		case []any:
			for _, c := range t {
				d = max(d, walk(c))
			}
			return d + 1
		}
		return 0
	}
	return walk(v)
}
