package inventory

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// taskFilesObject is bytecode/inventory/task_files.bpf.c, built by `make
// bytecode`.
//
//go:embed bpf/task_files.bpf.o
var taskFilesObject []byte

// taskFilesSpec parses the embedded iterator once.
var taskFilesSpec = sync.OnceValues(func() (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(taskFilesObject))
	if err != nil {
		return nil, fmt.Errorf("task_files iterator object: %w", err)
	}
	return spec, nil
})

// record is what the iterator writes per descriptor (struct record).
type record struct {
	PID  uint32
	FD   uint32
	Kind uint32
	ID   uint32
	Comm [16]byte
}

const recordSize = 32

// taskFiles is the task_files iterator, loaded and attached: loading costs
// tens of milliseconds (the kernel resolves its BTF), a run a fraction of
// one, so a Scanner keeps it between scans.
type taskFiles struct {
	prog   *ebpf.Program
	iter   *link.Iter
	progID uint32
	linkID uint32
}

// loadTaskFiles loads and attaches the iterator; ErrUnsupported when the
// kernel cannot.
func loadTaskFiles() (_ *taskFiles, err error) {
	spec, err := taskFilesSpec()
	if err != nil {
		return nil, err
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"task_files"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load the task_files iterator: %w: %w", err, ErrUnsupported)
	}
	t := &taskFiles{prog: objs.Prog}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.iter, err = link.AttachIter(link.IterOptions{Program: objs.Prog}); err != nil {
		return nil, fmt.Errorf("attach the task_files iterator: %w: %w", err, ErrUnsupported)
	}
	info, err := t.prog.Info()
	if err != nil {
		return nil, fmt.Errorf("task_files iterator: %w", err)
	}
	id, _ := info.ID()
	t.progID = uint32(id)
	linfo, err := t.iter.Info()
	if err != nil {
		return nil, fmt.Errorf("task_files iterator: %w", err)
	}
	t.linkID = uint32(linfo.ID)
	return t, nil
}

func (t *taskFiles) close() error {
	var errs []error
	if t.iter != nil {
		errs = append(errs, t.iter.Close())
	}
	if t.prog != nil {
		errs = append(errs, t.prog.Close())
	}
	return errors.Join(errs...)
}

// own reports whether the object is the iterator's own.
func (t *taskFiles) own(kind objectKind, id uint32) bool {
	return kind == kindProgram && id == t.progID || kind == kindLink && id == t.linkID
}

// holders runs the iterator once. It fails with errPIDNamespace when the
// pids it reports are not those of this process's /proc.
func (t *taskFiles) holders(ctx context.Context) ([]holding, error) {
	r, err := t.iter.Open()
	if err != nil {
		return nil, fmt.Errorf("run the task_files iterator: %w", err)
	}
	defer r.Close()
	recs, err := readRecords(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("read the task_files iterator: %w", err)
	}
	// This process's descriptor of the iterator's link tells its pid as
	// the kernel reports it.
	self := os.Getpid()
	sawSelf := false
	var out []holding
	for _, rec := range recs {
		h := holding{pid: int(rec.PID), fd: int(rec.FD), kind: objectKind(rec.Kind), id: rec.ID, comm: unix.ByteSliceToString(rec.Comm[:])}
		if t.own(h.kind, h.id) {
			if h.kind == kindLink {
				if h.pid != self {
					return nil, errPIDNamespace
				}
				sawSelf = true
			}
			continue
		}
		out = append(out, h)
	}
	if !sawSelf {
		return nil, errPIDNamespace
	}
	return out, nil
}

// readRecords reads the iterator's records until the end.
func readRecords(ctx context.Context, r io.Reader) ([]record, error) {
	br := bufio.NewReaderSize(r, 128*recordSize)
	var out []record
	buf := make([]byte, recordSize)
	for {
		if len(out)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		_, err := io.ReadFull(br, buf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var rec record
		if _, err := binary.Decode(buf, binary.NativeEndian, &rec); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
}
