// Command bundle writes bpfd-operator's Operator Lifecycle Manager bundle
// (bundle/manifests, bundle/metadata and bundle.Dockerfile) from config/:
// the hand-written ClusterServiceVersion base and release of
// config/manifests, the CRDs, the operator's Deployment and roles, the
// agent's role and SCC Role, the user roles and the samples. The output is a
// function of those files alone, so `make bundle` is reproducible and a
// test (bundle_test.go) holds the committed bundle to it.
//
// Usage: go run ./hack/bundle [-root DIR] [-out DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	out := flag.String("out", "", "where to write bundle/ and bundle.Dockerfile (default: root)")
	flag.Parse()
	if *out == "" {
		*out = *root
	}
	files, err := Generate(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	if err := os.RemoveAll(filepath.Join(*out, "bundle")); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
	for name, data := range files {
		path := filepath.Join(*out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bundle:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bundle:", err)
			os.Exit(1)
		}
	}
}
