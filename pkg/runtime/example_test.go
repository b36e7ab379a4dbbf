package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// ExampleManager_Load loads the example XDP counter on eth0 from bytecode
// the caller has admitted, lists it and unloads it. It needs root, so it is
// not run.
func ExampleManager_Load() {
	ctx := context.Background()
	m, err := runtime.Open(ctx, runtime.Options{StateDir: "/var/lib/bpfd", BPFFS: "/run/bpfd/fs"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// bpfd's daemon resolves, fetches and verifies an artifact first; here
	// the bytecode is a local file, admitted by fiat.
	elf, err := os.ReadFile("xdp_counter.bpf.o")
	if err != nil {
		log.Fatal(err)
	}
	bc := &runtime.Bytecode{
		Objects:    []runtime.Object{{Name: "xdp_counter.bpf.o", ELF: elf}},
		Provenance: runtime.Provenance{Reference: "file:xdp_counter.bpf.o", Rule: "local"},
	}
	req := runtime.LoadRequest{
		Programs: []runtime.ProgramRequest{{
			Name:   "xdp_counter",
			Kind:   progtype.XDP,
			Attach: runtime.XDPAttach{Interface: "eth0"},
		}},
		Metadata: map[string]string{"app": "counter"},
	}
	if err := req.Validate(); err != nil { // cheap: before fetching anything
		log.Fatal(err)
	}
	progs, err := m.Load(ctx, req, bc)
	var verr *runtime.VerifierError
	switch {
	case errors.As(err, &verr):
		log.Fatalf("%s was rejected; the verifier said:\n%v", verr.Program, verr.Tail)
	case errors.Is(err, runtime.ErrConflict):
		log.Fatalf("eth0's XDP hook cannot take the program: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	p := progs[0]
	fmt.Println(p.ID, p.Kernel.ProgramID, p.PinPath, p.Maps[0].PinPath)

	selected, err := m.List(ctx, runtime.ListOptions{Selector: map[string]string{"app": "counter"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(selected))

	if err := m.Unload(ctx, p.ID); err != nil {
		log.Fatal(err)
	}
}

func ExampleParseID() {
	id, err := runtime.ParseID("42")
	fmt.Println(id, err)
	_, err = runtime.ParseID("0")
	fmt.Println(err, errors.Is(err, runtime.ErrInvalid))
	// Output:
	// 42 <nil>
	// program id "0": want a positive integer: invalid true
}
