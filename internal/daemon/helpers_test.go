package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// bytecodeDir holds the example objects the tests build artifacts from.
var bytecodeDir, _ = filepath.Abs(filepath.Join("..", "..", "bytecode"))

const keyPassword = "test-password"

// signer is a generated cosign key pair; pub is its public key file.
type signer struct {
	key *verify.PrivateKey
	pub string
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	pair, err := verify.GenerateKeyPair([]byte(keyPassword))
	if err != nil {
		t.Fatal(err)
	}
	key, err := verify.LoadPrivateKey(pair.PrivatePEM, []byte(keyPassword))
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pub, pair.PublicPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &signer{key: key, pub: pub}
}

// buildArtifact builds an artifact of the named objects of bytecode/ (or
// objects at absolute paths) and
// writes it to dst (a registry or oci: reference with a tag). It returns
// the reference pinned to the artifact's digest.
func buildArtifact(t testing.TB, dst string, objects ...string) string {
	t.Helper()
	ctx := context.Background()
	var files []artifact.ObjectFile
	for _, o := range objects {
		if !filepath.IsAbs(o) {
			o = filepath.Join(bytecodeDir, o)
		}
		f, err := artifact.ReadObjectFile(o)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	staged := memory.New()
	root, err := artifact.Build(ctx, staged, files, artifact.BuildOptions{Tool: "bpfd-test"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := artifact.ParseReference(dst)
	if err != nil {
		t.Fatal(err)
	}
	target, err := artifact.Open(ctx, ref, artifact.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if _, err := artifact.Copy(ctx, staged, root, target, ref.Selector(), artifact.CopyOptions{SkipReferrers: true}); err != nil {
		t.Fatal(err)
	}
	return ref.Name() + "@" + root.Digest.String()
}

// sign signs the artifact ref names (in the given format) with s's key.
func (s *signer) sign(t testing.TB, ref string, format verify.Format) {
	t.Helper()
	ctx := context.Background()
	r, err := artifact.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	target, err := artifact.Open(ctx, r, artifact.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Sign(ctx, target, verify.Subject{Name: r.Name(), Descriptor: desc}, s.key, verify.SignOptions{Format: format}); err != nil {
		t.Fatal(err)
	}
}

// rootOf resolves ref to its descriptor.
func rootOf(t testing.TB, ref string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	r, err := artifact.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	target, err := artifact.Open(ctx, r, artifact.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	desc, err := target.ResolveReference(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// policyRule is one rule of a test trust policy.
type policyRule struct {
	name   string
	images []string
	keys   []string // public key files; none means allowUnsigned
	kinds  []string // allow.programTypes
}

// writePolicy writes a trust policy of rules (default deny) to path.
func writePolicy(t testing.TB, path string, rules ...policyRule) {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\ndefault: deny\nrules:\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "- name: %s\n  images: [%s]\n", r.name, quoteAll(r.images))
		if len(r.keys) == 0 {
			b.WriteString("  allowUnsigned: true\n")
		} else {
			b.WriteString("  authorities:\n")
			for _, k := range r.keys {
				fmt.Fprintf(&b, "  - key: {path: %q}\n", k)
			}
		}
		if len(r.kinds) > 0 {
			fmt.Fprintf(&b, "  allow: {programTypes: [%s]}\n", strings.Join(r.kinds, ", "))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
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

// syncBuffer is a bytes.Buffer safe for concurrent writers, for audit logs.
type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// cgroupUDPHelper moves itself into the cgroup named by BPFD_CGROUP and
// sends BPFD_PACKETS datagrams to itself over loopback.
func cgroupUDPHelper() int {
	procs := filepath.Join(os.Getenv("BPFD_CGROUP"), "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("BPFD_PACKETS"))
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range n {
		if _, err := c.WriteTo([]byte("bpfd"), c.LocalAddr()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
