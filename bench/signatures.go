package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// signatureFormats are the two cosign signature formats, by the names
// `bpfctl-image sign --format` gives them.
var signatureFormats = []string{"bundle", "legacy"}

// A cosign is one major version of the cosign CLI.
type cosign struct {
	// Name is "cosign v2" or "cosign v3"; Path its binary.
	Name, Path string
	// V2 selects v2's flags.
	V2 bool
}

func (sc *supplyChain) cosigns() []cosign {
	return []cosign{{Name: "cosign v2", Path: sc.cosign2, V2: true}, {Name: "cosign v3", Path: sc.cosign3}}
}

// signCommand signs ref with key in format, offline: no transparency log,
// no signing config, no Fulcio. cosign v2 writes bundles only with
// COSIGN_EXPERIMENTAL set and OCI 1.1 referrers asked for; v3 writes them by
// default.
func (c cosign) signCommand(env []string, key, ref, format string) command {
	args := []string{"sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--yes"}
	switch {
	case c.V2 && format == "bundle":
		env = append(env, "COSIGN_EXPERIMENTAL=1")
		args = append(args, "--new-bundle-format", "--registry-referrers-mode=oci-1-1")
	case !c.V2:
		args = append(args, "--use-signing-config=false", fmt.Sprintf("--new-bundle-format=%t", format == "bundle"))
	}
	return command{Path: c.Path, Args: append(args, ref), Env: env}
}

// verifyCommand verifies ref's signatures with the public key pub, offline.
// cosign v2 reads bundles only when told to, and then wants a trusted root;
// v3 reads both formats.
func (c cosign) verifyCommand(env []string, pub, trustedRoot, ref, format string) command {
	args := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}
	if c.V2 && format == "bundle" {
		args = append(args, "--new-bundle-format", "--trusted-root", trustedRoot)
	}
	return command{Path: c.Path, Args: append(args, ref), Env: env}
}

// signatureRows compares signing and verifying a's digest, in each format,
// with cosign v2 and v3. It makes the key pair (with `bpfctl-image keygen`,
// whose files are cosign's) and, for each verify row, a repository holding
// a and one signature made by that row's cosign, so cosign verifies its own
// signature and bpfctl-image the same one.
func (sc *supplyChain) signatureRows(ctx context.Context, a *builtArtifact) ([]Row, error) {
	keyDir := filepath.Join(sc.dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	prefix := filepath.Join(keyDir, "bench")
	if err := runCommands(ctx, sc.bpfctlImageCommand("keygen", "--out", prefix)); err != nil {
		return nil, err
	}
	sc.key, sc.pub = prefix+".key", prefix+".pub"
	pubPEM, err := os.ReadFile(sc.pub)
	if err != nil {
		return nil, err
	}
	pub, err := verify.ParsePublicKey(pubPEM)
	if err != nil {
		return nil, err
	}
	if sc.policy, err = verify.KeyPolicy(pub); err != nil {
		return nil, err
	}
	sc.trustedRoot = filepath.Join(keyDir, "trusted_root.json")
	if err := os.WriteFile(sc.trustedRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		return nil, err
	}
	digestRef := func(repo string) string { return sc.ref(repo, "@"+a.Digest.String()) }

	var rows []Row
	for _, format := range signatureFormats {
		for _, c := range sc.cosigns() {
			// Each run signs a fresh copy: a repository's signatures grow
			// with every sign, and the next would read and rewrite more.
			side := func(name, prefix string, sign func(repo string) command) *Side {
				repos := &freshRepos{prefix: prefix}
				return &Side{
					Name: name,
					Prepare: func(ctx context.Context) error {
						repos.next()
						return sc.copyToRegistry(ctx, a, repos.Name)
					},
					Run:   func(ctx context.Context) error { return runCommands(ctx, sign(repos.Name)) },
					Check: func(ctx context.Context) error { return sc.checkSigned(ctx, a, repos.Name, format) },
				}
			}
			slug := fmt.Sprintf("%s-%s", strings.ReplaceAll(c.Name, " ", "-"), format)
			rows = append(rows, Row{
				Name: fmt.Sprintf("sign %s, %s format, vs %s", a.Name, format, c.Name),
				Ours: *side("bpfctl-image sign --format "+format, "sign-bpfctl-"+slug, func(repo string) command {
					return sc.bpfctlImageCommand("sign", "--key", sc.key, "--format", format, digestRef(repo))
				}),
				Peer: side(c.Name+" sign", "sign-cosign-"+slug, func(repo string) command {
					return c.signCommand(sc.env, sc.key, digestRef(repo), format)
				}),
			})
		}
	}
	for _, format := range signatureFormats {
		for _, c := range sc.cosigns() {
			repo := fmt.Sprintf("verify-%s-%s", strings.ReplaceAll(c.Name, " ", "-"), format)
			if err := sc.copyToRegistry(ctx, a, repo); err != nil {
				return nil, err
			}
			if err := runCommands(ctx, c.signCommand(sc.env, sc.key, digestRef(repo), format)); err != nil {
				return nil, fmt.Errorf("%s signature for the verify rows: %w", c.Name, err)
			}
			if err := sc.checkSigned(ctx, a, repo, format); err != nil {
				return nil, fmt.Errorf("%s signature for the verify rows: %w", c.Name, err)
			}
			ref := digestRef(repo)
			rows = append(rows, Row{
				Name: fmt.Sprintf("verify a %s %s signature", c.Name, format),
				Ours: Side{Name: "bpfctl-image verify --key", Run: func(ctx context.Context) error {
					return runCommands(ctx, sc.bpfctlImageCommand("verify", "--key", sc.pub, ref))
				}},
				Peer: &Side{Name: c.Name + " verify --key", Run: func(ctx context.Context) error {
					return runCommands(ctx, c.verifyCommand(sc.env, sc.pub, sc.trustedRoot, ref, format))
				}},
			})
		}
	}
	return rows, nil
}
