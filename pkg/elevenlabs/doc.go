// Package elevenlabs is scribeq's client for the ElevenLabs Speech-to-Text
// API in asynchronous (webhook) mode, and the signing and verification of its
// webhooks. It uses only the standard library and knows nothing of NATS or
// Postgres.
//
// What it must match is written down in shared/ELEVENLABS.md: the client
// sends what the official SDKs send, and Verify accepts what ElevenLabs
// delivers (with a constant-time compare and a bound on future timestamps,
// which the SDKs lack).
package elevenlabs
