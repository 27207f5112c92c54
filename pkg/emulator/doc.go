// Package emulator is a local stand-in for the ElevenLabs Speech-to-Text
// batch API, faithful enough that the official SDKs and scribeq's own client
// work against it unchanged, and that its webhooks verify with the SDKs'
// constructEvent and with elevenlabs.Verifier.
//
// It serves POST /v1/speech-to-text (multipart, synchronous or webhook=true),
// GET and DELETE /v1/speech-to-text/transcripts/{transcription_id}, GET
// /v1/workspace/webhooks (the one configured webhook, for health checks),
// and routes of its own:
//
//	GET /emulator/ledger[?job_id=J]        every convert call (Call), oldest first
//	GET /emulator/ledger/jobs[?job_id=J][&min_accepted=N]
//	                                       JobCounts by job_id; min_accepted=2
//	                                       lists the jobs billed more than once
//	GET /emulator/stats                    Stats: calls, accepted, 429s by kind,
//	                                       webhooks sent/dropped/duplicated, slots
//	GET /emulator/faults                   the Faults in force
//	PUT /emulator/faults                   replace them (JSON Faults); answers
//	                                       the faults now in force, 422 if invalid
//	GET /emulator/webhook                  the webhook's WebhookState
//	PUT /emulator/webhook                  set it, e.g. {"is_auto_disabled":true}
//	GET /healthz
//
// Faults (Config.Faults, or PUT /emulator/faults while it runs) make it
// misbehave the ways the real API can, for the fault suite: error answers
// by status, both kinds of 429 with their headers, a job accepted but its
// answer lost to a connection reset, stalled answers, webhooks dropped,
// duplicated, late, reordered, delivered before the convert answer or with
// their metadata as a JSON string, and transcripts lost or failing on GET.
// The draws come from an RNG seeded by Config.Seed. MaxConcurrent is a
// concurrency limit counted as ElevenLabs counts it.
//
// What it answers follows shared/ELEVENLABS.md: the same validation rules
// and error body ({"detail":{type, code, message, status, request_id,
// param}}), the immediate {message, request_id, transcription_id} answer in
// webhook mode, and a signed webhook delivered exactly once, never retried,
// as the real API does for speech-to-text (unless a fault says otherwise).
//
// The transcript is a deterministic function of the audio bytes (see
// TranscriptText): a WAV whose header carries a LIST/INFO ICMT comment is
// "transcribed" as that comment, anything else as pseudo-words seeded by its
// sha256. Uploads are streamed (hashed and header-sniffed on the fly), so a
// multi-GB file costs no more memory than a small one.
package emulator
