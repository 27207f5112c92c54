// Package emulator is a local stand-in for the ElevenLabs Speech-to-Text
// batch API, faithful enough that the official SDKs and scribeq's own client
// work against it unchanged, and that its webhooks verify with the SDKs'
// constructEvent and with elevenlabs.Verifier.
//
// It serves POST /v1/speech-to-text (multipart, synchronous or webhook=true),
// GET and DELETE /v1/speech-to-text/transcripts/{transcription_id}, and two
// routes of its own: GET /emulator/ledger (every convert call, as JSON) and
// GET /healthz.
//
// What it answers follows shared/ELEVENLABS.md: the same validation rules
// and error body ({"detail":{type, code, message, status, request_id,
// param}}), the immediate {message, request_id, transcription_id} answer in
// webhook mode, and a signed webhook delivered exactly once, never retried,
// as the real API does for speech-to-text.
//
// The transcript is a deterministic function of the audio bytes (see
// TranscriptText): a WAV whose header carries a LIST/INFO ICMT comment is
// "transcribed" as that comment, anything else as pseudo-words seeded by its
// sha256. Uploads are streamed (hashed and header-sniffed on the fly), so a
// multi-GB file costs no more memory than a small one.
package emulator
