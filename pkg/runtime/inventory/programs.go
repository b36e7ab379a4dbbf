package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Program is a BPF program as the kernel knows it.
type Program struct {
	ID uint32
	// Type is the kernel's program type, e.g. "XDP", "SchedCLS".
	Type string
	// Name is the kernel's (possibly truncated) name; Tag the hash of its
	// instructions.
	Name string
	Tag  string
	// LoadedAt is when the kernel loaded it.
	LoadedAt time.Time
	// LoaderUID is the uid of the process that loaded it; HaveLoaderUID
	// says whether the kernel reports it.
	LoaderUID     uint32
	HaveLoaderUID bool
	// BTFID is the id of the program's BTF object; 0 without BTF.
	BTFID uint32
	// MapIDs are the maps it uses.
	MapIDs []uint32
	// LinkIDs are the links that attach it.
	LinkIDs []uint32
	// VerifiedInstructions and Memlock (bytes) say how big it is.
	VerifiedInstructions uint32
	Memlock              uint64
	// Stats are its run count and run time; nil when they never moved
	// (the kernel counts only while BPF statistics are on).
	Stats *RunStats
	// Pins are its paths under the bpffs mounts.
	Pins []string
	// Holders are the processes holding a descriptor of it.
	Holders []Holder
}

// RunStats are a program's cumulative runs as the kernel counts them while
// BPF statistics are enabled.
type RunStats struct {
	RunCount uint64
	RunTime  time.Duration
}

// programs lists the kernel's programs.
func (s *scan) programs(ctx context.Context) error {
	s.progIndex = map[uint32]int{}
	boot := BootTime()
	id := ebpf.ProgramID(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list programs: %w", err)
		}
		id = next
		if s.own(kindProgram, uint32(id)) {
			continue
		}
		if len(s.inv.Programs) >= s.opts.MaxObjects {
			s.inv.Omitted.Programs++
			continue
		}
		p, ok := readProgram(id, boot)
		if !ok {
			continue // unloaded meanwhile
		}
		s.progIndex[p.ID] = len(s.inv.Programs)
		s.inv.Programs = append(s.inv.Programs, p)
	}
}

// readProgram reads program id; false when it is gone.
func readProgram(id ebpf.ProgramID, boot time.Time) (Program, bool) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return Program{}, false
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return Program{}, false
	}
	p := Program{ID: uint32(id), Type: info.Type.String(), Name: info.Name, Tag: info.Tag}
	if t, ok := info.LoadTime(); ok && !boot.IsZero() {
		p.LoadedAt = boot.Add(t).UTC().Truncate(time.Millisecond)
	}
	p.LoaderUID, p.HaveLoaderUID = info.CreatedByUID()
	if b, ok := info.BTFID(); ok {
		p.BTFID = uint32(b)
	}
	if ids, ok := info.MapIDs(); ok {
		for _, m := range ids {
			p.MapIDs = append(p.MapIDs, uint32(m))
		}
	}
	p.VerifiedInstructions, _ = info.VerifiedInstructions()
	p.Memlock, _ = info.Memlock()
	if st, err := prog.Stats(); err == nil && (st.RunCount > 0 || st.Runtime > 0) {
		p.Stats = &RunStats{RunCount: st.RunCount, RunTime: st.Runtime}
	}
	return p, true
}

// BootTime returns when the machine booted, to turn the kernel's load
// times (time since boot) into wall-clock times; zero if unknown. It is
// computed once, so that a program's load time reads the same every time.
var BootTime = sync.OnceValue(func() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
})
