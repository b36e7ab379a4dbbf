package supplychain

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// bytecodeDir holds the example objects the tests build artifacts from.
var bytecodeDir, _ = filepath.Abs(filepath.Join("..", "..", "bytecode"))

// signer is a generated cosign key pair; pub is its public key file.
type signer struct {
	key *testimage.Key
	pub string
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	k := testimage.PooledKey(t)
	return &signer{key: k, pub: k.PubFile}
}

// buildArtifact builds an artifact of the named objects of bytecode/ (or
// objects at absolute paths) and writes it to dst (a registry or oci:
// reference with a tag). It returns the reference pinned to the artifact's
// digest.
func buildArtifact(t testing.TB, dst string, objects ...string) string {
	t.Helper()
	var paths []string
	for _, o := range objects {
		if !filepath.IsAbs(o) {
			o = filepath.Join(bytecodeDir, o)
		}
		paths = append(paths, o)
	}
	ref, err := testimage.Build(context.Background(), dst, paths...)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// sign signs the artifact ref names (in the given format) with s's key.
func (s *signer) sign(t testing.TB, ref string, format verify.Format) {
	t.Helper()
	if err := s.key.Sign(context.Background(), ref, format); err != nil {
		t.Fatal(err)
	}
}

// rootOf resolves ref to its descriptor.
func rootOf(t testing.TB, ref string) ocispec.Descriptor {
	t.Helper()
	_, root := openRef(t, ref)
	return root
}

// openRef opens the repository or layout ref names, closed when t ends, and
// resolves ref in it.
func openRef(t testing.TB, ref string) (*artifact.Target, ocispec.Descriptor) {
	t.Helper()
	r, err := artifact.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	target, err := artifact.Open(context.Background(), r, artifact.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	root, err := target.ResolveReference(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return target, root
}

// policyRule is one rule of a test trust policy.
type policyRule = testimage.Rule

// writePolicy writes a trust policy of rules (default deny) to path.
func writePolicy(t testing.TB, path string, rules ...policyRule) {
	t.Helper()
	if err := testimage.WritePolicy(path, rules...); err != nil {
		t.Fatal(err)
	}
}

// testLogger sends log lines to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
