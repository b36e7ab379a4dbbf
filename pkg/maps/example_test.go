package maps_test

import (
	"fmt"
	"log"

	"github.com/bpfd-dev/bpfd/pkg/maps"
)

// The user-space half of an application reads a counter of its XDP
// program from the volume the pod mounts at /run/bpfd/maps.
func Example() {
	v, err := maps.Open("/run/bpfd/maps")
	if err != nil {
		log.Fatal(err) // maps.ErrNotVolume: no volume of csi.bpfd.io mounted there
	}
	stats, err := v.Map("xdp_stats")
	if err != nil {
		log.Fatal(err) // maps.ErrNotFound, maps.ErrUnprivilegedBPFDisabled, fs.ErrPermission
	}
	defer stats.Close()
	var udp uint64
	if err := stats.Lookup(uint32(17), &udp); err != nil {
		log.Fatal(err)
	}
	fmt.Println("UDP packets:", udp)
}

func ExamplePinName() {
	for _, name := range []string{"xdp_stats", ".bss", ".rodata.config"} {
		fmt.Println(name, "->", maps.PinName(name))
	}
	// Output:
	// xdp_stats -> xdp_stats
	// .bss -> _bss
	// .rodata.config -> _rodata_config
}
