package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// HolderSource is how Scan finds the processes holding BPF objects.
type HolderSource string

const (
	// HolderSourceAuto uses the BPF iterator, else procfs.
	HolderSourceAuto HolderSource = ""
	// HolderSourceIterator runs a BPF iterator over every task's open
	// files (Linux 5.8 with BTF): one pass in the kernel.
	HolderSourceIterator HolderSource = "iterator"
	// HolderSourceProcfs reads /proc/<pid>/fd and fdinfo of every
	// process: slower, and only the processes of bpfd's pid namespace.
	HolderSourceProcfs HolderSource = "procfs"
	// HolderSourceNone does not look for holders.
	HolderSourceNone HolderSource = "none"
)

func (h HolderSource) check() error {
	switch h {
	case HolderSourceAuto, HolderSourceIterator, HolderSourceProcfs, HolderSourceNone:
		return nil
	}
	return fmt.Errorf("holder source %q (want iterator, procfs or none): %w", string(h), ErrInvalid)
}

// objectKind is the kind of BPF object a descriptor refers to, as the
// iterator writes it.
type objectKind uint32

const (
	kindProgram objectKind = 1
	kindMap     objectKind = 2
	kindLink    objectKind = 3
)

// holding is one descriptor of a BPF object in one process.
type holding struct {
	pid  int
	fd   int
	kind objectKind
	id   uint32
	// comm is the process's name when the source read it.
	comm string
}

// findHolders returns every descriptor of a BPF object on the node, from
// the source the options name, and sets sc's source and ownership test.
func (s *Scanner) findHolders(ctx context.Context, sc *scan) ([]holding, error) {
	sc.own = func(objectKind, uint32) bool { return false }
	if s.iter != nil {
		sc.own = s.iter.own
	}
	source := sc.opts.Holders
	switch source {
	case HolderSourceNone:
		sc.inv.HolderSource = HolderSourceNone
		return nil, nil
	case HolderSourceProcfs:
		sc.inv.HolderSource = HolderSourceProcfs
		return procfsHolders(ctx, sc.opts.ProcRoot)
	}
	if s.iter == nil && s.iterErr == nil {
		s.iter, s.iterErr = loadTaskFiles()
	}
	var err error
	if s.iter != nil {
		sc.own = s.iter.own
		var held []holding
		held, err = s.iter.holders(ctx)
		if err == nil {
			sc.inv.HolderSource = HolderSourceIterator
			return held, nil
		}
	} else {
		err = s.iterErr
	}
	if source == HolderSourceIterator || ctx.Err() != nil {
		return nil, err
	}
	sc.warn("holders: %v; read /proc instead", err)
	sc.inv.HolderSource = HolderSourceProcfs
	return procfsHolders(ctx, sc.opts.ProcRoot)
}

// holders sets the objects' holders and describes the processes.
func (s *scan) holders(held []holding) {
	type key struct {
		kind objectKind
		id   uint32
	}
	fds := map[key]map[int][]int{}
	comms := map[int]string{}
	for _, h := range held {
		k := key{h.kind, h.id}
		if fds[k] == nil {
			fds[k] = map[int][]int{}
		}
		fds[k][h.pid] = append(fds[k][h.pid], h.fd)
		if h.comm != "" {
			comms[h.pid] = h.comm
		}
		if _, ok := comms[h.pid]; !ok {
			comms[h.pid] = ""
		}
	}
	list := func(k key) []Holder {
		byPID := fds[k]
		pids := make([]int, 0, len(byPID))
		for pid := range byPID {
			pids = append(pids, pid)
		}
		slices.Sort(pids)
		var out []Holder
		for _, pid := range pids {
			if len(out) >= s.opts.MaxHolders {
				s.inv.Omitted.Holders += len(byPID[pid])
				continue
			}
			f := byPID[pid]
			slices.Sort(f)
			out = append(out, Holder{PID: pid, FDs: f})
		}
		return out
	}
	for i := range s.inv.Programs {
		s.inv.Programs[i].Holders = list(key{kindProgram, s.inv.Programs[i].ID})
	}
	for i := range s.inv.Maps {
		s.inv.Maps[i].Holders = list(key{kindMap, s.inv.Maps[i].ID})
	}
	for i := range s.inv.Links {
		s.inv.Links[i].Holders = list(key{kindLink, s.inv.Links[i].ID})
	}

	pids := make([]int, 0, len(comms))
	for pid := range comms {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		if len(s.inv.Processes) >= s.opts.MaxProcesses {
			s.inv.Omitted.Processes++
			continue
		}
		p, ok := describeProcess(s.opts.ProcRoot, pid, comms[pid])
		if !ok {
			continue // exited meanwhile
		}
		s.inv.Processes = append(s.inv.Processes, p)
	}
}

// errPIDNamespace means the iterator's pids are not those of bpfd's /proc.
var errPIDNamespace = errors.New("bpfd runs in a pid namespace of its own: the kernel's pids are not its /proc's")
