package dispatcher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Pin layout under a Dispatcher's PinDir:
//
//	link                      the hook's BPF link (XDP, TCX); a TC filter
//	                          cannot be pinned and is found by netlink
//	<mode>-<id>/              a chain, named by its mode and the kernel id of
//	                          its dispatcher program (direct-<id>: a lone
//	                          program, the program's id)
//	<mode>-<id>/program       the dispatcher program (direct: the program)
//	<mode>-<id>/chain         its members, a frozen array map of
//	                          manifestEntry
//	<mode>-<id>/counters      the members' counters, when the chain
//	                          accounts them (accounting.go)
//	<mode>-<id>/base          what the members ran before this chain (the
//	                          Dispatcher's base, accounting.go): an array
//	                          map of slotCounter by position, pinned after
//	                          the hook runs the chain, when not all zero
//	<mode>-<id>/prog<i>-prog  freplace: slot i's extension program
//	<mode>-<id>/prog<i>-link  freplace: the link attaching it to slot i
//
// A chain's directory is complete before the hook runs it. The hook runs the
// chain whose program it runs; any other is left from an interrupted
// rebuild, and Open removes it.
const (
	pinLink     = "link"
	pinProgram  = "program"
	pinChain    = "chain"
	pinCounters = "counters"
	pinBase     = "base"
)

func slotProgramPin(i int) string { return fmt.Sprintf("prog%d-prog", i) }
func slotLinkPin(i int) string    { return fmt.Sprintf("prog%d-link", i) }

// generation is a chain on the hook.
type generation struct {
	mode      Mode
	programID ebpf.ProgramID
	slots     []Slot
	// dir holds its pins; "" when unpinned.
	dir string
	// chain is the chain when this process built it, nil when adopted.
	chain *Chain
	// counters are the chain's counters when it accounts its members: a
	// descriptor of the generation's own.
	counters *ebpf.Map
}

func generationName(mode Mode, id ebpf.ProgramID) string { return fmt.Sprintf("%s-%d", mode, id) }

// parseGenerationName is the inverse of generationName.
func parseGenerationName(name string) (Mode, ebpf.ProgramID, bool) {
	m, id, ok := strings.Cut(name, "-")
	if !ok || (Mode(m) != ModeFreplace && Mode(m) != ModeLinked && Mode(m) != ModeDirect) {
		return "", 0, false
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return Mode(m), ebpf.ProgramID(n), true
}

// pinGeneration pins chain c under pinDir and returns its directory. It
// leaves nothing behind when it fails.
func pinGeneration(pinDir string, c *Chain) (_ string, err error) {
	id, err := programID(c.prog)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(pinDir, generationName(c.mode, id))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("pin chain: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := objPin(c.prog.FD(), filepath.Join(dir, pinProgram)); err != nil {
		return "", err
	}
	manifest, err := newManifest(c.slots)
	if err != nil {
		return "", err
	}
	defer manifest.Close()
	if err := objPin(manifest.FD(), filepath.Join(dir, pinChain)); err != nil {
		return "", err
	}
	if c.counters != nil {
		if err := objPin(c.counters.FD(), filepath.Join(dir, pinCounters)); err != nil {
			return "", err
		}
	}
	for i, l := range c.links {
		if err := objPin(c.exts[i].FD(), filepath.Join(dir, slotProgramPin(i))); err != nil {
			return "", err
		}
		fd, ok := l.(interface{ FD() int })
		if !ok {
			return "", fmt.Errorf("pin slot %d link: no descriptor", i)
		}
		if err := objPin(fd.FD(), filepath.Join(dir, slotLinkPin(i))); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// manifestEntry is a member in a chain's pinned member list.
type manifestEntry struct {
	ID        uint64
	Priority  uint32
	ProceedOn uint32
	ProgramID uint32
	NameLen   uint32
	Name      [48]byte
}

// newManifest returns a frozen array map that lists slots.
func newManifest(slots []Slot) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfd_chain",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(binary.Size(manifestEntry{})),
		MaxEntries: uint32(len(slots)),
	})
	if err != nil {
		return nil, fmt.Errorf("chain manifest: %w", err)
	}
	for i, s := range slots {
		e := manifestEntry{ID: s.ID, Priority: uint32(s.Priority), ProceedOn: uint32(s.ProceedOn), ProgramID: uint32(s.ProgramID)}
		e.NameLen = uint32(copy(e.Name[:], s.Name))
		if err := m.Put(uint32(i), &e); err != nil {
			m.Close()
			return nil, fmt.Errorf("chain manifest: %w", err)
		}
	}
	if err := m.Freeze(); err != nil {
		m.Close()
		return nil, fmt.Errorf("chain manifest: %w", err)
	}
	return m, nil
}

// readManifest returns the slots listed by the manifest pinned at path.
func readManifest(path string) ([]Slot, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, fmt.Errorf("chain manifest: %w", err)
	}
	defer m.Close()
	var slots []Slot
	for i := range int(m.MaxEntries()) {
		var e manifestEntry
		if err := m.Lookup(uint32(i), &e); err != nil {
			return nil, fmt.Errorf("chain manifest: %w", err)
		}
		slots = append(slots, Slot{
			Position: i, ID: e.ID, Name: string(e.Name[:min(e.NameLen, uint32(len(e.Name)))]),
			Priority: int(e.Priority), ProceedOn: ProceedOn(e.ProceedOn), ProgramID: ebpf.ProgramID(e.ProgramID),
		})
	}
	return slots, nil
}

// checkBPFFS reports whether dir (or, when it does not exist yet, its
// parent) is on a bpffs.
func checkBPFFS(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		var fs unix.Statfs_t
		err := unix.Statfs(d, &fs)
		if errors.Is(err, unix.ENOENT) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pin directory %s: %w", dir, err)
		}
		if fs.Type != unix.BPF_FS_MAGIC {
			return fmt.Errorf("pin directory %s: not on a bpffs: %w", dir, ErrInvalid)
		}
		return nil
	}
}
