// Command bench measures bpfd against its peers and prints one table.
//
// Each row times one operation done two ways — bpfd's tool and a peer
// (oras, cosign, bpftool, or the same programs run directly) — in the same
// run on the same machine, alternating the two sides, and reports the
// medians and their ratio (bpfd / peer: below 1 means bpfd is faster). Rows
// without a peer report bpfd's figure alone. The results also go to
// bench/results.json. Figures depend on the machine: none is committed as an
// expectation.
//
//	go run ./bench [-runs 7] [-rows REGEXP] [-out bench/results.json]
//
// `make bench` builds the binaries and tools first and runs it as root.
package main
