// Package natsembed runs a NATS server with JetStream inside the process, for
// `scribeq dev` and for tests. It fsyncs every write (sync_interval: always):
// without it an OS crash can lose messages JetStream has already acknowledged
// (shared/RELIABILITY.md), and "nothing lost" is the point of scribeq.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures the embedded server.
type Config struct {
	// StoreDir holds JetStream's file storage. Required.
	StoreDir string
	// Host to listen on. Default 127.0.0.1.
	Host string
	// Port to listen on. Default 4222; -1 picks a free port.
	Port int
	// MaxPayload is the largest message accepted, in bytes. Default 8 MiB
	// (the server warns above that); larger events use the claim check.
	MaxPayload int32
	// Logger receives the server's notices and errors. Default: discard.
	Logger *slog.Logger
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 4222
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 8 << 20
	}
	opts := &server.Options{
		ServerName: "scribeq-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: true,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: create server: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(&logAdapter{l: cfg.Logger}, false, false, false)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server on %s:%d not ready after 30s", cfg.Host, cfg.Port)
	}
	return s, nil
}

type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Tracef(format string, v ...any)  {}
