package supplychain

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// TestRefusesLyingConfig signs artifacts of testdata/bad whose config
// disagrees with their object (a kind the xdp program does not have, which a
// policy's programTypes would admit; 10,000 invented programs): the supply
// chain refuses them through artifact.Fetch, naming the disagreement, although
// their signatures are valid. The valid entry, signed alike, loads.
func TestRefusesLyingConfig(t *testing.T) {
	ctx := context.Background()
	e := newChainEnv(t)
	c, err := badinput.Locate()
	if err != nil {
		t.Fatal(err)
	}
	table, err := c.Table("artifact")
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{
		"valid":                    "",
		"config-program-kinds-lie": `program xdp_counter: kinds "xdp,kprobe" in the config, "xdp" in the object`,
		"config-programs-invented": `the config lists program "invented00000", which the object does not define (the config lists 10001 programs, the object has 1)`,
		"bpfman-label-type-lies":   `label io.ebpf.programs says program xdp_counter is "tracepoint"`,
	}
	for _, entry := range table.Entries {
		want, ok := entries[entry.Name]
		if !ok {
			continue
		}
		t.Run(entry.Name, func(t *testing.T) {
			layout, err := entry.WriteLayout(filepath.Join(e.images, entry.Name))
			if err != nil {
				t.Fatal(err)
			}
			e.key.sign(t, layout.Ref(), verify.FormatBundle)
			res, err := e.chain.Fetch(ctx, layout.Ref(), PullIfNotPresent)
			switch {
			case want == "" && err != nil:
				t.Fatalf("control refused: %v", err)
			case want == "":
				if len(res.Objects) != 1 || res.Verdict.Rule != "images" {
					t.Errorf("%d objects, verdict %+v", len(res.Objects), res.Verdict)
				}
			case err == nil:
				t.Fatal("a config that disagrees with its object was accepted")
			case !errors.Is(err, artifact.ErrUnsupported) || !strings.Contains(err.Error(), want):
				t.Errorf("error %v\nwant ErrUnsupported holding %q", err, want)
			}
		})
	}
}
