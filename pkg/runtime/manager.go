package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
)

// Options configure a Manager. The zero value uses the defaults.
type Options struct {
	// StateDir holds the state store; DefaultStateDir when empty.
	StateDir string
	// BPFFS is the directory programs are pinned under; DefaultBPFFS when
	// empty. The Manager mounts a bpffs there unless one is mounted. A
	// state dir stays bound to the bpffs dir it was first used with.
	BPFFS string
	// Logger receives the Manager's log lines (reconciliation at Open, and
	// failures to clean up); none when nil.
	Logger *slog.Logger
}

// Manager loads programs into the kernel, attaches and pins them, and keeps
// their records. Its methods are safe for concurrent use: operations on the
// same hook are serialized, others run in parallel.
type Manager struct {
	src   Source
	store *store
	bpffs string
	log   *slog.Logger
	hooks hookTable

	// mu is held shared by every operation and exclusively by Close.
	mu     sync.RWMutex
	closed bool

	// pending are records of rolled-back loads that could not be deleted
	// yet; retryRemovals deletes them.
	pendingMu sync.Mutex
	pending   []ID
}

// Open opens the state store, mounts the bpffs if needed and reconciles the
// store with the kernel and the bpffs:
//   - programs whose pins (link, or recorded TC filter) are still in place
//     are adopted without reloading;
//   - loads and unloads that a crash interrupted are rolled back or
//     finished;
//   - records whose kernel objects are gone are removed, and pin
//     directories without a record are removed; each is logged.
//
// src supplies bytecode to Load. Open fails with ErrConflict when another
// process has the state store open.
func Open(ctx context.Context, src Source, opts Options) (*Manager, error) {
	if src == nil {
		return nil, fmt.Errorf("source: missing: %w", ErrInvalid)
	}
	m := &Manager{
		src:   src,
		bpffs: opts.BPFFS,
		log:   opts.Logger,
	}
	if m.bpffs == "" {
		m.bpffs = DefaultBPFFS
	}
	m.bpffs = filepath.Clean(m.bpffs)
	if !filepath.IsAbs(m.bpffs) {
		return nil, fmt.Errorf("bpffs %s: not an absolute path: %w", m.bpffs, ErrInvalid)
	}
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}

	var err error
	if m.store, err = openStore(stateDir, m.bpffs); err != nil {
		return nil, err
	}
	mounted, err := ensureBPFFS(m.bpffs)
	if err != nil {
		m.store.close()
		return nil, err
	}
	if mounted {
		m.log.Info("mounted bpffs", "path", m.bpffs)
	}
	if mounted, err := ensureTracefs(); err != nil {
		m.log.Warn("no tracefs; tracepoints cannot be attached", "error", err)
	} else if mounted {
		m.log.Info("mounted tracefs", "path", "/sys/kernel/tracing")
	}
	if err := m.reconcile(ctx); err != nil {
		m.store.close()
		return nil, fmt.Errorf("reconcile state: %w", err)
	}
	return m, nil
}

// Close waits for running operations to finish and closes the state store.
// Programs stay loaded and attached: the next Open adopts them.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.store.close()
}

// enter starts an operation; the caller calls m.mu.RUnlock when done.
func (m *Manager) enter() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// BPFFS returns the directory programs are pinned under.
func (m *Manager) BPFFS() string { return m.bpffs }

// stepHook, when set, is called at each step of a load or unload that leaves
// durable state behind; the crash test sets it to kill the process there.
var stepHook func(name string)

func step(name string) {
	if stepHook != nil {
		stepHook(name)
	}
}
