// Command bpfctl-image is not implemented yet.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bpfctl-image: not implemented yet")
	os.Exit(1)
}
