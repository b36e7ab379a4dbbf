package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// NewLogger returns the daemon's logger writing to w in the configured
// format (text or json) and level.
func NewLogger(w io.Writer, cfg *Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openAuditLog returns the audit logger: JSON lines appended to the
// configured audit file, or else the daemon's log with log=audit. The
// closer closes the file.
func openAuditLog(cfg *Config, log *slog.Logger) (*slog.Logger, io.Closer, error) {
	if cfg.Log.AuditFile == "" {
		return log.With("log", "audit"), io.NopCloser(nil), nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Log.AuditFile), 0o700); err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(cfg.Log.AuditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return slog.New(slog.NewJSONHandler(f, nil)), f, nil
}
