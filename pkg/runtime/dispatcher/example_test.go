package dispatcher_test

import (
	"fmt"
	"log"

	"github.com/cilium/ebpf"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
	"github.com/bpfd-dev/bpfd/pkg/runtime/dispatcher"
)

// A daemon picks the mode once, opens the dispatcher of each hook that has
// programs (adopting what a previous run pinned), and applies the hook's
// programs in run order after every load and unload.
func ExampleDispatcher() {
	mode, err := dispatcher.ResolveMode(dispatcher.ModeAuto)
	if err != nil {
		log.Fatal(err)
	}
	hook := dispatcher.Hook{Kind: progtype.XDP, Ifindex: 4}
	d, err := dispatcher.Open(hook, dispatcher.Options{Mode: mode, PinDir: "/run/bpfd/fs/dispatchers/xdp-4"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	spec, err := ebpf.LoadCollectionSpec("xdp_counter.bpf.o")
	if err != nil {
		log.Fatal(err)
	}
	maps, err := ebpf.NewCollection(&ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types})
	if err != nil {
		log.Fatal(err)
	}
	defer maps.Close()
	err = d.Apply([]dispatcher.Member{{
		ID: 7, Name: "xdp_counter", Priority: 100, ProceedOn: dispatcher.DefaultProceedOn(progtype.XDP),
		Program: spec.Programs["xdp_counter"], Maps: maps.Maps,
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range d.State().Slots {
		fmt.Println(s.Position, s.Name, s.Priority, s.ProceedOn.Names(progtype.XDP))
	}
}
