package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestSignaturesOnRegistryWithoutDeletes pushes an artifact with two
// signatures to a registry without the referrers API, signs it twice more
// there, and copies it back out, on a registry that refuses deletes
// (distribution's default, where each of these used to fail with 405 after
// writing the sha256-<hex> index) and on one that allows them.
func TestSignaturesOnRegistryWithoutDeletes(t *testing.T) {
	keys := []string{keyFiles(t), keyFiles(t), keyFiles(t), keyFiles(t)}
	for name, opts := range map[string][]testutil.RegistryOption{
		"deletes refused": nil,
		"deletes enabled": {testutil.WithDeletes()},
	} {
		t.Run(name, func(t *testing.T) {
			reg := testutil.StartRegistry(t, opts...)
			layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":v1"
			ok(t, "build", "--dest", layout, object("xdp_counter"))
			for _, k := range keys[:2] {
				mustImage(t, cliutil.ExitOK, "sign", "--key", k+".key", layout)
			}

			remote := reg.Host + "/signed/xdp:v1"
			var pushed copyOutput
			if err := json.Unmarshal([]byte(mustImage(t, cliutil.ExitOK, "push", "--output", "json", layout, remote).stdout), &pushed); err != nil {
				t.Fatal(err)
			}
			if len(pushed.Referrers) != 2 || len(pushed.Skipped) != 0 {
				t.Errorf("push carried %d referrers and skipped %v; want 2 and none", len(pushed.Referrers), pushed.Skipped)
			}
			ok(t, "inspect", remote)
			// A CI retry signs again: each sign succeeds and adds one.
			for _, k := range keys[2:] {
				mustImage(t, cliutil.ExitOK, "sign", "--key", k+".key", remote)
			}
			for _, k := range keys {
				if out := verifyJSON(t, cliutil.ExitOK, "--key", k+".pub", remote); len(out.Signatures) != 4 {
					t.Errorf("verify with key %s read %d signatures, want 4", filepath.Base(k), len(out.Signatures))
				}
			}

			audit := "oci:" + filepath.Join(t.TempDir(), "audit") + ":v1"
			var copied copyOutput
			if err := json.Unmarshal([]byte(mustImage(t, cliutil.ExitOK, "copy", "--output", "json", remote, audit).stdout), &copied); err != nil {
				t.Fatal(err)
			}
			if len(copied.Referrers) != 4 || !strings.HasPrefix(copied.MediaType, "application/vnd.oci.image.") {
				t.Errorf("copy carried %d referrers (want 4), root media type %q", len(copied.Referrers), copied.MediaType)
			}
			verifyJSON(t, cliutil.ExitOK, "--key", keys[3]+".pub", audit)
		})
	}
}
