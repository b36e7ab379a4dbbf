// Command bpfd-agent is not implemented yet.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bpfd-agent: not implemented yet")
	os.Exit(1)
}
