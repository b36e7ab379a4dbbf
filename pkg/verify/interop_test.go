package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// cosignCLI runs one of the real cosign binaries (bin/tools/cosign2,
// bin/tools/cosign3; `make test` puts them on PATH) offline: HOME and the TUF
// cache point into the test's temporary directory.
type cosignCLI struct {
	name string
	path string
	home string
}

func lookCosign(t *testing.T, name string) cosignCLI {
	t.Helper()
	return cosignCLI{name: name, path: testutil.Tool(t, name), home: t.TempDir()}
}

// run runs cosign with args and env, returning its combined output.
func (c cosignCLI) run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(c.path, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.home, "TUF_ROOT="+filepath.Join(c.home, "tuf"), "COSIGN_PASSWORD="+testPassword)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sign signs ref with key in format, offline (no transparency log, no
// signing config, no Fulcio).
func (c cosignCLI) sign(t *testing.T, key, ref string, format Format) {
	t.Helper()
	args := []string{"sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--yes"}
	var env []string
	switch {
	case c.name == "cosign2" && format == FormatBundle:
		env = []string{"COSIGN_EXPERIMENTAL=1"}
		args = append(args, "--new-bundle-format", "--registry-referrers-mode=oci-1-1")
	case c.name == "cosign3":
		args = append(args, "--use-signing-config=false", fmt.Sprintf("--new-bundle-format=%t", format == FormatBundle))
	}
	if out, err := c.run(t, env, append(args, ref)...); err != nil {
		t.Fatalf("%s sign %s (%s): %v\n%s", c.name, ref, format, err, out)
	}
}

// verify runs cosign verify offline with the public key pub.
func (c cosignCLI) verify(t *testing.T, pub, ref string, format Format, emptyRoot string) (string, error) {
	t.Helper()
	args := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}
	if c.name == "cosign2" && format == FormatBundle {
		args = append(args, "--new-bundle-format", "--trusted-root", emptyRoot)
	}
	return c.run(t, nil, append(args, ref)...)
}

// TestInteropCosign is the interop matrix against a real registry: each of
// bpfctl's signer, cosign v2 and cosign v3 signs a fresh artifact in each
// format; each of the three verifies it with the right key (accepted) and a
// wrong one (denied). Keys cross too: cosign signs with a key from
// GenerateKeyPair, we sign with one from `cosign generate-key-pair`.
func TestInteropCosign(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	cosign2, cosign3 := lookCosign(t, "cosign2"), lookCosign(t, "cosign3")

	ours := newTestKey(t)
	theirs := cosignKeyPair(t, cosign2)
	emptyRoot := filepath.Join(t.TempDir(), "trusted_root.json")
	writeFile(t, emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))

	type signed struct {
		signer, repo string
		format       Format
		desc         ocispec.Descriptor
		key          testKey // the key that signed
		wrong        testKey
	}
	var artifacts []signed
	for _, signer := range []string{"bpfctl", "cosign2", "cosign3"} {
		for _, format := range []Format{FormatBundle, FormatLegacy} {
			name := fmt.Sprintf("interop/%s-%s", signer, format)
			repo := newRepository(t, reg.Host, name)
			desc := pushArtifact(t, repo, signer+" "+string(format), "v1")
			ref := fmt.Sprintf("%s/%s@%s", reg.Host, name, desc.Digest)
			a := signed{signer: signer, repo: name, format: format, desc: desc, key: ours, wrong: theirs}
			switch signer {
			case "bpfctl":
				a.key, a.wrong = theirs, ours
				sign(t, repo, reg.Host+"/"+name, desc, theirs.priv, SignOptions{Format: format})
			case "cosign2":
				cosign2.sign(t, ours.keyFile, ref, format)
			case "cosign3":
				cosign3.sign(t, ours.keyFile, ref, format)
			}
			artifacts = append(artifacts, a)
		}
	}

	for _, a := range artifacts {
		ref := fmt.Sprintf("%s/%s@%s", reg.Host, a.repo, a.desc.Digest)
		subject := Subject{Name: reg.Host + "/" + a.repo, Descriptor: a.desc}
		t.Run(fmt.Sprintf("%s-%s/bpfctl", a.signer, a.format), func(t *testing.T) {
			repo := newRepository(t, reg.Host, a.repo)
			for _, k := range []testKey{a.key, a.wrong} {
				pol, err := KeyPolicy(k.pub)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := NewVerifier(pol, VerifierOptions{}).VerifyArtifact(ctx, repo, subject)
				var denial *DenialError
				switch {
				case k == a.key && err != nil:
					t.Errorf("right key: %v", err)
				case k == a.key && (len(rep.Signatures) != 1 || rep.Signatures[0].Format != a.format):
					t.Errorf("right key: signatures %+v, want one %s signature", rep.Signatures, a.format)
				case k == a.wrong && !errors.As(err, &denial):
					t.Errorf("wrong key: err = %v, want a denial", err)
				case k == a.wrong && denial.Reason != ReasonUntrustedKey:
					t.Errorf("wrong key: reason %s, want %s", denial.Reason, ReasonUntrustedKey)
				}
			}
		})
		for _, c := range []cosignCLI{cosign2, cosign3} {
			t.Run(fmt.Sprintf("%s-%s/%s", a.signer, a.format, c.name), func(t *testing.T) {
				out, err := c.verify(t, a.key.pubFile, ref, a.format, emptyRoot)
				if err != nil {
					t.Errorf("%s verify with the signing key failed: %v\n%s", c.name, err, out)
				}
				t.Logf("%s verify with the signing key:\n%s", c.name, out)
				out, err = c.verify(t, a.wrong.pubFile, ref, a.format, emptyRoot)
				if err == nil {
					t.Errorf("%s verify with a wrong key succeeded:\n%s", c.name, out)
				}
				t.Logf("%s verify with a wrong key:\n%s", c.name, out)
			})
		}
	}
}

// cosignKeyPair makes a key pair with `cosign generate-key-pair`.
func cosignKeyPair(t *testing.T, c cosignCLI) testKey {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(c.path, "generate-key-pair")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+c.home, "COSIGN_PASSWORD="+testPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s generate-key-pair: %v\n%s", c.name, err, out)
	}
	k := testKey{keyFile: filepath.Join(dir, "cosign.key"), pubFile: filepath.Join(dir, "cosign.pub")}
	keyPEM, err := os.ReadFile(k.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if k.priv, err = LoadPrivateKey(keyPEM, []byte(testPassword)); err != nil {
		t.Fatalf("load the private key cosign made: %v", err)
	}
	pubPEM, err := os.ReadFile(k.pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if k.pub, err = ParsePublicKey(pubPEM); err != nil {
		t.Fatalf("parse the public key cosign made: %v", err)
	}
	if !strings.Contains(string(keyPEM), sigstorePrivateKeyType) {
		t.Errorf("cosign wrote a key of another PEM type:\n%s", keyPEM)
	}
	return k
}

// newRepository opens repository name on the test registry over plain HTTP.
func newRepository(t *testing.T, host, name string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	return repo
}
