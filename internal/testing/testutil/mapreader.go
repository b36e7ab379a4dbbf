package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/pkg/maps"
)

func init() { RegisterUnprivileged("map-reader", serveMapReader) }

// MapReader is an application's user-space half run unprivileged, as
// StartUnprivileged runs helpers: it opens a volume of csi.bpfd.io with
// package maps and reads, writes and opens what the test asks.
type MapReader struct {
	p *UnprivilegedProcess
}

// ReaderError is an error of the reader: Kind classifies it (one of
// "not-found", "unprivileged-bpf-disabled", "not-volume" for the maps
// package's errors, "EPERM", "EACCES", "EROFS", "ENOENT", or "other") and
// Message is its text.
type ReaderError struct {
	Kind, Message string
}

func (e *ReaderError) Error() string { return e.Kind + ": " + e.Message }

// StartMapReader starts a reader of the volume at dir as uid and gid 65534
// with the supplementary groups given and no capabilities. A volume that
// cannot be opened fails the test.
func StartMapReader(tb testing.TB, groups []uint32, dir string) *MapReader {
	tb.Helper()
	r := &MapReader{p: StartUnprivileged(tb, groups, "map-reader", dir)}
	if err := r.ask(tb, "hello"); err != nil {
		tb.Fatalf("map reader of %s: %v", dir, err)
	}
	return r
}

// Open opens the map called name in the volume; later reads and writes go
// to it.
func (r *MapReader) Open(tb testing.TB, name string) error { return r.ask(tb, "open", name) }

// Read returns the __u64 at key of the open map.
func (r *MapReader) Read(tb testing.TB, key uint32) (uint64, error) {
	tb.Helper()
	var v uint64
	err := r.askValue(tb, &v, "read", strconv.FormatUint(uint64(key), 10))
	return v, err
}

// Write sets the __u64 at key of the open map.
func (r *MapReader) Write(tb testing.TB, key uint32, value uint64) error {
	return r.ask(tb, "write", strconv.FormatUint(uint64(key), 10), strconv.FormatUint(value, 10))
}

// ReadOnly reports what the volume says of itself.
func (r *MapReader) ReadOnly(tb testing.TB) bool {
	tb.Helper()
	var v uint64
	if err := r.askValue(tb, &v, "readonly"); err != nil {
		tb.Fatal(err)
	}
	return v == 1
}

// Names returns the volume's map names.
func (r *MapReader) Names(tb testing.TB) ([]string, error) {
	tb.Helper()
	line, err := r.raw(tb, "names")
	if err != nil {
		return nil, err
	}
	return strings.Fields(line), nil
}

// OpenPin opens, read-only, the BPF object pinned at path (anywhere, not
// only in the volume) and closes it.
func (r *MapReader) OpenPin(tb testing.TB, path string) error { return r.ask(tb, "pin", path) }

// LoadProgram loads a two-instruction socket filter program.
func (r *MapReader) LoadProgram(tb testing.TB) error { return r.ask(tb, "load") }

// CreateMap creates an array map.
func (r *MapReader) CreateMap(tb testing.TB) error { return r.ask(tb, "create") }

func (r *MapReader) ask(tb testing.TB, words ...string) error {
	_, err := r.raw(tb, words...)
	return err
}

func (r *MapReader) askValue(tb testing.TB, v *uint64, words ...string) error {
	tb.Helper()
	line, err := r.raw(tb, words...)
	if err != nil {
		return err
	}
	n, perr := strconv.ParseUint(line, 10, 64)
	if perr != nil {
		tb.Fatalf("map reader answered %q to %v", line, words)
	}
	*v = n
	return nil
}

// raw sends a request and returns the answer after "ok", or the error.
func (r *MapReader) raw(tb testing.TB, words ...string) (string, error) {
	tb.Helper()
	answer := r.p.Ask(tb, strings.Join(words, "\t"))
	if rest, ok := strings.CutPrefix(answer, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	kind, msg, _ := strings.Cut(strings.TrimPrefix(answer, "error\t"), "\t")
	return "", &ReaderError{Kind: kind, Message: msg}
}

// serveMapReader is the reader's side: args[0] is the volume.
func serveMapReader(args []string, in *bufio.Scanner, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("want the volume's directory")
	}
	dir := args[0]
	var m *ebpf.Map
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	volume := func() (*maps.Volume, error) { return maps.Open(dir) }
	for in.Scan() {
		f := strings.Split(in.Text(), "\t")
		answer, err := func() (string, error) {
			switch {
			case f[0] == "hello":
				return "", nil
			case f[0] == "open" && len(f) == 2:
				v, err := volume()
				if err != nil {
					return "", err
				}
				nm, err := v.Map(f[1])
				if err != nil {
					return "", err
				}
				if m != nil {
					m.Close()
				}
				m = nm
				return "", nil
			case f[0] == "read" && len(f) == 2 && m != nil:
				key, _ := strconv.ParseUint(f[1], 10, 32)
				var v uint64
				err := m.Lookup(uint32(key), &v)
				return strconv.FormatUint(v, 10), err
			case f[0] == "write" && len(f) == 3 && m != nil:
				key, _ := strconv.ParseUint(f[1], 10, 32)
				val, _ := strconv.ParseUint(f[2], 10, 64)
				return "", m.Put(uint32(key), val)
			case f[0] == "readonly":
				v, err := volume()
				if err != nil {
					return "", err
				}
				if v.ReadOnly() {
					return "1", nil
				}
				return "0", nil
			case f[0] == "names":
				v, err := volume()
				if err != nil {
					return "", err
				}
				names, err := v.Names()
				return strings.Join(names, " "), err
			case f[0] == "pin" && len(f) == 2:
				fd, err := ebpf.LoadPinnedMap(f[1], &ebpf.LoadPinOptions{ReadOnly: true})
				if err != nil {
					return "", err
				}
				fd.Close()
				return "", nil
			case f[0] == "load":
				p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL",
					Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
				if err != nil {
					return "", err
				}
				p.Close()
				return "", nil
			case f[0] == "create":
				nm, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
				if err != nil {
					return "", err
				}
				nm.Close()
				return "", nil
			}
			return "", fmt.Errorf("unknown request %q", in.Text())
		}()
		if err != nil {
			fmt.Fprintf(out, "error\t%s\t%s\n", errorKind(err), strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok %s\n", answer)
	}
	return nil
}

func errorKind(err error) string {
	for _, k := range []struct {
		err  error
		kind string
	}{
		{maps.ErrNotFound, "not-found"},
		{maps.ErrUnprivilegedBPFDisabled, "unprivileged-bpf-disabled"},
		{maps.ErrNotVolume, "not-volume"},
		{unix.EPERM, "EPERM"},
		{unix.EACCES, "EACCES"},
		{unix.EROFS, "EROFS"},
		{fs.ErrNotExist, "ENOENT"},
	} {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return "other"
}
