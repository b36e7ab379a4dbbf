package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// Options configure a Manager. The zero value uses the defaults.
type Options struct {
	// StateDir holds the state store; DefaultStateDir when empty.
	StateDir string
	// BPFFS is the directory programs are pinned under; DefaultBPFFS when
	// empty. The Manager mounts a bpffs there unless one is mounted. A
	// state dir stays bound to the bpffs dir it was first used with.
	BPFFS string
	// DispatcherMode is how the programs of an XDP or TC hook are chained:
	// DispatcherFreplace, DispatcherLinked, or DispatcherAuto (also the
	// empty value), which probes the kernel once at Open and picks freplace
	// where it runs extension programs, else linked. Forcing freplace on a
	// kernel that refuses extension programs fails Open with
	// ErrUnsupported. Chains built in another mode by an earlier run are
	// rebuilt in this one at Open.
	DispatcherMode DispatcherMode
	// LibxdpDir is where freplace XDP chains are also pinned in libxdp's
	// layout, so that xdp-loader status shows them; empty means
	// DefaultLibxdpDir when /sys/fs/bpf is a bpffs, else nowhere.
	LibxdpDir string
	// Logger receives the Manager's log lines (reconciliation at Open, the
	// dispatcher mode, and failures to clean up); none when nil.
	Logger *slog.Logger
}

// Manager loads programs into the kernel, attaches and pins them, and keeps
// their records. Its methods are safe for concurrent use: operations on the
// same hook are serialized, others run in parallel.
type Manager struct {
	store *catalog
	// kernel is what the Manager knows of kernel programs.
	kernel kernelView
	bpffs  string
	log    *slog.Logger
	hooks  hookTable
	// mode is the dispatcher mode of XDP and TC chains.
	mode dispatcher.Mode
	// libxdpDir is where freplace XDP chains are pinned for libxdp; "" for
	// nowhere.
	libxdpDir string
	// chainLone runs a lone XDP or TC program in a dispatcher chain too, as
	// bpfd did before lone programs ran directly; tests set it to make the
	// state such a bpfd left.
	chainLone bool

	// mu is held shared by every operation and exclusively by Close.
	mu     sync.RWMutex
	closed bool

	// pending are records of rolled-back loads that could not be deleted
	// yet; retryRemovals deletes them.
	pendingMu sync.Mutex
	pending   []ID

	// faults are the programs marked faulty (fault.go).
	faults faults
	// stats is the hold on BPF statistics (stats.go).
	stats statsControl

	// readers are the kernel ids of the maps whose events a reader is
	// consuming (events.go).
	readersMu sync.Mutex
	readers   map[uint32]bool
}

// Open opens the state store, mounts the bpffs if needed and reconciles the
// store with the kernel and the bpffs:
//   - programs whose pins are still in place are adopted without
//     reloading; the chain each XDP and TC hook runs is compared with the
//     records and adopted when it matches, else rebuilt from them;
//   - loads and unloads that a crash interrupted are rolled back or
//     finished;
//   - records whose kernel objects are gone are removed, and pin
//     directories without a record are removed; each is logged.
//
// A state store of an older schema version is migrated first; Open fails
// with ErrStoreTooNew, changing nothing, when a newer bpfd wrote it, and
// with ErrConflict when another process has it open.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	m := &Manager{
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
	// The store first: a store this bpfd refuses (a newer one, another
	// bpffs's) leaves everything as it was, the kernel included.
	var err error
	if m.store, err = openCatalog(stateDir, m.bpffs); err != nil {
		return nil, err
	}
	if m.store.replaced != "" {
		m.log.Warn("the state store was damaged under an earlier kernel, which took its programs with it; started a fresh one", "moved_to", m.store.replaced)
	}
	for _, what := range m.store.migrated {
		m.log.Info("migrated the state store", "path", filepath.Join(stateDir, storeFile), "migration", what)
	}
	if m.mode, err = resolveMode(opts.DispatcherMode, m.log); err != nil {
		m.store.close()
		return nil, err
	}
	if m.libxdpDir = opts.LibxdpDir; m.libxdpDir == "" && onBPFFS(filepath.Dir(DefaultLibxdpDir)) {
		m.libxdpDir = DefaultLibxdpDir
	}

	mounted, err := ensureBPFFS(m.bpffs)
	if err != nil {
		m.store.close()
		return nil, err
	}
	if mounted {
		m.log.Info("mounted bpffs", "path", m.bpffs)
	}
	if err := os.MkdirAll(filepath.Join(m.bpffs, dispatchersDir), 0o700); err != nil {
		m.store.close()
		return nil, fmt.Errorf("bpffs %s: %w", m.bpffs, err)
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
	m.kernel.seed(m.store.loaded())
	// Chains an earlier run left accounting (it held statistics) are
	// rebuilt without.
	if err := m.settleAccounting(false); err != nil {
		m.log.Warn("turn off per-member accounting", "error", err)
	}
	return m, nil
}

// Close waits for running operations to finish, releases the dispatchers'
// descriptors and closes the state store. Programs stay loaded and
// attached, chains on their hooks: the next Open adopts them.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	errs := []error{m.closeStats()}
	for _, h := range m.hooks.states() {
		if h.disp != nil {
			errs = append(errs, h.disp.Close())
			h.disp = nil
		}
		h.release()
	}
	errs = append(errs, m.store.close())
	return errors.Join(errs...)
}

// DispatcherMode returns the mode the Manager chains the programs of XDP
// and TC hooks in: DispatcherFreplace or DispatcherLinked. A lone program
// on its hook runs on its own, with no dispatcher.
func (m *Manager) DispatcherMode() DispatcherMode { return m.mode }

// chainMode returns the mode a chain of n programs runs in: the lone
// program on its hook runs directly, more run in the Manager's mode.
func (m *Manager) chainMode(n int) dispatcher.Mode {
	if m.chainLone {
		return m.mode
	}
	return dispatcher.ChainMode(m.mode, n)
}

// resolveMode returns the dispatcher mode to run in when requested is asked
// for, and logs the choice.
func resolveMode(requested DispatcherMode, log *slog.Logger) (DispatcherMode, error) {
	if requested == "" {
		requested = DispatcherAuto
	}
	mode, err := dispatcher.ResolveMode(requested)
	if err != nil {
		return "", fmt.Errorf("dispatcher mode %s: %w", requested, chainError(err, ""))
	}
	attrs := []any{"mode", mode, "requested", requested}
	if requested == DispatcherAuto && mode == DispatcherLinked {
		attrs = append(attrs, "freplace", dispatcher.ProbeFreplace())
	}
	log.Info("dispatcher mode for XDP and TC hooks", attrs...)
	return mode, nil
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
