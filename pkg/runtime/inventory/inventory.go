package inventory

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Inventory is what Scan found on the node.
type Inventory struct {
	// Programs, Maps and Links are the kernel's objects, by id.
	Programs []Program
	Maps     []Map
	Links    []Link
	// Processes are the processes holding a descriptor of one of the
	// objects, by pid.
	Processes []Process
	// HolderSource says how holders were found; HolderSourceNone when
	// Options said not to look.
	HolderSource HolderSource
	// Omitted counts what the bounds of Options left out.
	Omitted Omitted
	// Warnings say what could not be read (a bpffs that could not be
	// walked, a process that went away is not one), at most MaxWarnings.
	Warnings []string
	// ScannedAt is when the scan began; Took how long it took.
	ScannedAt time.Time
	Took      time.Duration
}

// Omitted counts what a scan found but left out to stay within its bounds.
type Omitted struct {
	// Programs, Maps and Links beyond Options.MaxObjects, each.
	Programs, Maps, Links int
	// Processes beyond Options.MaxProcesses: their descriptors are
	// counted in Holders, their details left out.
	Processes int
	// Holders are descriptors beyond Options.MaxHolders of one object.
	Holders int
	// Pins beyond Options.MaxPins, or below a directory deeper than
	// maxPinDepth.
	Pins int
	// Warnings beyond MaxWarnings.
	Warnings int
}

// Any reports whether anything was left out.
func (o Omitted) Any() bool { return o != Omitted{} }

// Holder is a process holding a descriptor of an object.
type Holder struct {
	// PID is the process's id in bpfd's pid namespace (the node's, when
	// bpfd runs with the host's pid namespace).
	PID int
	// FDs are its descriptors of the object, ascending.
	FDs []int
}

// Process is a process that holds BPF objects.
type Process struct {
	PID int
	// Comm is the process's name; Exe the path of its executable, empty
	// for kernel threads or when it could not be read.
	Comm string
	Exe  string
	// Cgroup is the process's cgroup path: the one naming a kubelet
	// container when there is one, else its cgroup v2 path.
	Cgroup string
	// Pod is what the cgroup path says of the pod and container; nil when
	// the cgroup is not a kubelet pod's.
	Pod *PodCgroup
}

// The default bounds of Options.
const (
	DefaultMaxObjects   = 10000
	DefaultMaxProcesses = 4096
	DefaultMaxHolders   = 64
	DefaultMaxPins      = 100000
	// MaxWarnings bounds Inventory.Warnings.
	MaxWarnings = 32
)

// Options bound and shape a Scan. The zero value scans everything, finds
// holders the best way the kernel allows and applies the default bounds.
type Options struct {
	// MaxObjects bounds the programs, the maps and the links reported,
	// each; 0 means DefaultMaxObjects. The lowest ids are kept.
	MaxObjects int
	// MaxProcesses bounds the processes described; 0 means
	// DefaultMaxProcesses.
	MaxProcesses int
	// MaxHolders bounds the holders (descriptors) reported per object; 0
	// means DefaultMaxHolders.
	MaxHolders int
	// MaxPins bounds the bpffs entries walked; 0 means DefaultMaxPins.
	MaxPins int
	// Holders says how to find holders; HolderSourceAuto by default.
	Holders HolderSource
	// SkipMaps leaves maps out (Inventory.Maps is empty; programs still
	// list their map ids).
	SkipMaps bool
	// SkipPins does not walk the bpffs mounts.
	SkipPins bool
	// ProcRoot is where procfs is mounted; "" means /proc.
	ProcRoot string
}

func (o *Options) defaults() error {
	if o.MaxObjects < 0 || o.MaxProcesses < 0 || o.MaxHolders < 0 || o.MaxPins < 0 {
		return fmt.Errorf("negative bound: %w", ErrInvalid)
	}
	if o.MaxObjects == 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	if o.MaxProcesses == 0 {
		o.MaxProcesses = DefaultMaxProcesses
	}
	if o.MaxHolders == 0 {
		o.MaxHolders = DefaultMaxHolders
	}
	if o.MaxPins == 0 {
		o.MaxPins = DefaultMaxPins
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	return o.Holders.check()
}

// Scan reports the node's BPF objects, their holders and pins, once: a
// Scanner that scans repeatedly is cheaper.
func Scan(ctx context.Context, opts Options) (*Inventory, error) {
	s := NewScanner()
	defer s.Close()
	return s.Scan(ctx, opts)
}

// Scanner scans the node repeatedly, keeping the BPF iterator that finds
// holders loaded between scans. Its methods are safe for concurrent use;
// scans run one at a time. The iterator's own program and link are never
// reported (Own names them for callers that list programs themselves).
type Scanner struct {
	mu sync.Mutex
	// iter is the loaded iterator; iterErr why it could not be loaded,
	// after which an automatic source reads /proc.
	iter    *taskFiles
	iterErr error
}

// NewScanner returns a Scanner; it loads nothing until a Scan needs the
// iterator.
func NewScanner() *Scanner { return &Scanner{} }

// Close releases the iterator.
func (s *Scanner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iter == nil {
		return nil
	}
	err := s.iter.close()
	s.iter = nil
	return err
}

// Own returns the kernel ids of the Scanner's iterator program and link;
// zeros while it has none loaded.
func (s *Scanner) Own() (programID, linkID uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iter == nil {
		return 0, 0
	}
	return s.iter.progID, s.iter.linkID
}

// Scan reports the node's BPF objects, their holders and pins, as opts
// say. Holders are found first, so that the descriptors Scan itself opens
// to read the objects are never among them. An object created or closed
// during the scan may or may not be reported. Errors are returned only for
// invalid options (ErrInvalid), when nothing could be listed (the bpf
// syscall refused, ctx done) or when the holder source opts name fails;
// what could not be read of one object or process is left out or noted in
// Warnings.
func (s *Scanner) Scan(ctx context.Context, opts Options) (*Inventory, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := &scan{opts: opts, inv: &Inventory{ScannedAt: time.Now()}}
	held, err := s.findHolders(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := sc.programs(ctx); err != nil {
		return nil, err
	}
	if !opts.SkipMaps {
		if err := sc.maps(ctx); err != nil {
			return nil, err
		}
	}
	if err := sc.links(ctx); err != nil {
		return nil, err
	}
	if !opts.SkipPins {
		sc.pins(ctx)
	}
	sc.holders(held)
	sc.inv.Took = time.Since(sc.inv.ScannedAt)
	return sc.inv, nil
}

// scan is one Scan's work in progress.
type scan struct {
	opts Options
	inv  *Inventory
	// own reports whether an object is the Scanner's own iterator.
	own func(objectKind, uint32) bool
	// index of each object in inv by kernel id.
	progIndex map[uint32]int
	mapIndex  map[uint32]int
	linkIndex map[uint32]int
}

func (s *scan) warn(format string, args ...any) {
	if len(s.inv.Warnings) >= MaxWarnings {
		s.inv.Omitted.Warnings++
		return
	}
	s.inv.Warnings = append(s.inv.Warnings, fmt.Sprintf(format, args...))
}
