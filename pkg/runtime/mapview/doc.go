// Package mapview turns the raw bytes of BPF map keys, values and ring
// buffer records into JSON, and JSON back into bytes, following the BTF
// type that describes them: integers become numbers, enums their value's
// name, char arrays strings, structs and unions objects, arrays lists,
// global data sections objects of their variables. Per-CPU values whose
// every field is an integer can be summed.
//
// It works on bytes in memory in the host's byte order and has no other
// dependency than cilium/ebpf's btf package, so that applications reading
// their own maps can use it without bpfd.
package mapview
