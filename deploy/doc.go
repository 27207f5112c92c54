// Package deploy holds no code: its tests check the deployment files at the
// top of the repository and in this folder, which no other test would
// notice breaking. There is no Docker engine in CI, so docker-compose.yml is
// loaded with compose-go (the loader Docker Compose itself uses) and its
// services are then run as plain processes, the way the file describes them.
//
//	deploy/Dockerfile       the image: static, non-root, version-stamped
//	deploy/nats/nats.conf   NATS for the compose stack (JetStream, fsync always)
//	../docker-compose.yml   the whole stack, profiles "emulator" and "cli"
//	../.env.example         every variable docker-compose.yml reads
//	../.dockerignore        the build context allowlist
package deploy
