package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ID is bpfd's identifier of a program it loaded. IDs start at 1 and are
// never reused on a node, even across restarts.
type ID uint64

// String returns the id in decimal, as bpfctl shows it.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ParseID parses a decimal program id.
func ParseID(s string) (ID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("program id %q: want a positive integer: %w", s, ErrInvalid)
	}
	return ID(n), nil
}

// LoadRequest asks the Manager to load programs from one artifact's
// bytecode and attach each to its hook. It names no bytecode: the caller
// resolves, fetches and admits the bytecode, and hands it to Load beside
// the request.
type LoadRequest struct {
	// Programs to load, at least one, each at most once. Programs of one
	// object share that object's maps.
	Programs []ProgramRequest
	// Globals overrides global variables declared by the loaded objects
	// (const volatile, .data or .bss), by name. Each value's length must
	// equal the variable's size; a name no loaded object declares is an
	// error.
	Globals map[string][]byte
	// Metadata labels every loaded program, e.g. app=web; List selects on
	// it.
	Metadata map[string]string
	// MapOwnerID, if not 0, makes the programs use the maps of the loaded
	// program with that id wherever the names match (read-only data such
	// as .rodata stays the program's own).
	MapOwnerID ID
	// Requester is who asked, recorded with the programs.
	Requester Requester
	// Owner is who the programs belong to. Its UID is the requester's: 0
	// is filled in with Requester.UID, another value is invalid. Who may
	// claim the other fields is the caller's decision; the Manager records
	// them.
	Owner Owner
}

// ProgramRequest selects one program of the artifact and says where to
// attach it.
type ProgramRequest struct {
	// Name is the program's function name in its object. Required.
	Name string
	// Kind is how to attach it: one of progtype.Of(program). Required.
	Kind progtype.Kind
	// Attach must be the spec type for Kind: XDPAttach for xdp, TCAttach for
	// tc, TCXAttach for tcx, TracepointAttach, KprobeAttach for kprobe and
	// kretprobe, UprobeAttach for uprobe and uretprobe, FentryAttach for
	// fentry and fexit, CgroupAttach for cgroup, RawTracepointAttach for
	// raw_tracepoint and tp_btf. Required.
	//
	// An object may hold twins: programs doing one job through different
	// hooks, of which its own loader picks one at run time (bcc's tools ship
	// a tp_btf and a raw_tp variant, or an fentry and a kprobe variant).
	// Only the programs requested by name are loaded, so a request chooses
	// a twin by naming it; the others are neither loaded nor checked against
	// the kernel.
	Attach AttachSpec
}

// Requester identifies a client by its socket's peer credentials.
type Requester struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
}

// Limits on a request's labels, so records stay small.
const (
	maxMetadataEntries  = 64
	maxMetadataKeyLen   = 253
	maxMetadataValueLen = 1024
)

// Validate checks the request on its own, without I/O and before any
// bytecode is fetched; Load runs it again. Errors wrap ErrInvalid.
func (r *LoadRequest) Validate() error {
	if len(r.Programs) == 0 {
		return fmt.Errorf("programs: none requested: %w", ErrInvalid)
	}
	seen := make(map[string]bool, len(r.Programs))
	for _, p := range r.Programs {
		if p.Name == "" {
			return fmt.Errorf("program: missing name: %w", ErrInvalid)
		}
		if seen[p.Name] {
			return fmt.Errorf("program %s: requested twice: %w", p.Name, ErrInvalid)
		}
		seen[p.Name] = true
		if k, err := progtype.Parse(string(p.Kind)); err != nil || k != p.Kind {
			return fmt.Errorf("program %s: kind %q: %w", p.Name, p.Kind, ErrInvalid)
		}
		if err := checkFits(p.Attach, p.Kind); err != nil {
			return fmt.Errorf("program %s: %w", p.Name, err)
		}
		if err := p.Attach.validate(); err != nil {
			return fmt.Errorf("program %s: %w", p.Name, err)
		}
	}
	for name := range r.Globals {
		if name == "" {
			return fmt.Errorf("global data: empty name: %w", ErrInvalid)
		}
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return err
	}
	if r.Owner.UID != 0 && r.Owner.UID != r.Requester.UID {
		return fmt.Errorf("owner: uid %d is not the requester's (%d): %w", r.Owner.UID, r.Requester.UID, ErrInvalid)
	}
	return r.Owner.validate()
}

func checkMetadata(md map[string]string) error {
	if len(md) > maxMetadataEntries {
		return fmt.Errorf("metadata: %d labels, at most %d: %w", len(md), maxMetadataEntries, ErrInvalid)
	}
	for k, v := range md {
		switch {
		case k == "":
			return fmt.Errorf("metadata: empty key: %w", ErrInvalid)
		case len(k) > maxMetadataKeyLen:
			return fmt.Errorf("metadata key %.20q...: longer than %d bytes: %w", k, maxMetadataKeyLen, ErrInvalid)
		case strings.ContainsAny(k, "=,\n"):
			return fmt.Errorf("metadata key %q: must not contain '=', ',' or newlines: %w", k, ErrInvalid)
		case len(v) > maxMetadataValueLen:
			return fmt.Errorf("metadata %s: value longer than %d bytes: %w", k, maxMetadataValueLen, ErrInvalid)
		}
	}
	return nil
}
