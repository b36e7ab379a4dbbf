// Command bpfd is not implemented yet.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bpfd: not implemented yet")
	os.Exit(1)
}
