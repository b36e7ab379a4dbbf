package inventory

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// anonKinds are the targets /proc/<pid>/fd/<n> links to for BPF objects,
// and the fdinfo field that holds each one's id.
var anonKinds = map[string]struct {
	kind  objectKind
	field string
}{
	"anon_inode:bpf-prog": {kindProgram, "prog_id:"},
	"anon_inode:bpf-map":  {kindMap, "map_id:"},
	"anon_inode:bpf_link": {kindLink, "link_id:"},
}

// procfsHolders reads every process's descriptors under procRoot: those
// linking to a BPF object's anonymous inode, with the id their fdinfo
// gives. Processes and descriptors that go away meanwhile, or that this
// process may not read, are skipped.
func procfsHolders(ctx context.Context, procRoot string) ([]holding, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []holding
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(procRoot, e.Name())
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, f := range fds {
			target, err := os.Readlink(filepath.Join(dir, "fd", f.Name()))
			if err != nil {
				continue
			}
			k, ok := anonKinds[target]
			if !ok {
				continue
			}
			fd, err := strconv.Atoi(f.Name())
			if err != nil {
				continue
			}
			id, ok := fdinfoID(filepath.Join(dir, "fdinfo", f.Name()), k.field)
			if !ok {
				continue
			}
			out = append(out, holding{pid: pid, fd: fd, kind: k.kind, id: id})
		}
	}
	return out, nil
}

// fdinfoID returns the value of field (e.g. "prog_id:") in an fdinfo file.
func fdinfoID(path, field string) (uint32, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), field)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		return uint32(id), err == nil
	}
	return 0, false
}
