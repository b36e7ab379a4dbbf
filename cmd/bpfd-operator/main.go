// Command bpfd-operator is not implemented yet.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bpfd-operator: not implemented yet")
	os.Exit(1)
}
