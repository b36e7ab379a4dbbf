package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"

	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// coldObject is the object the cold load row loads, as an XDP program.
const coldObject = "xdp_counter.bpf.o"

// coldLoadRows times a cold signed load: a tag in the local registry
// resolved, its signature verified, the artifact pulled, the program loaded
// and attached to one end of a veth pair, with nothing cached. bpfd's side
// is one `bpfctl load image REGISTRY/cold/xdp_counter:v1` against a bpfd
// started before each run (untimed) on an emptied cache; the peer is what
// the same job takes by hand with the usual tools, each a process: `oras
// resolve` of the tag, `cosign verify --key` (v3, offline) of the digest,
// `oras pull` of the digest into an emptied directory, `bpftool prog load`
// of the pulled object (pinned) and `bpftool net attach xdp`. Both sides
// verify the same bundle signature made by bpfd's signing code. Between
// runs, untimed, each side's program is unloaded and detached.
func coldLoadRows(ctx context.Context, env *Env) (_ []Row, _ func(), err error) {
	for _, tool := range []string{"bpftool", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (hack/tools.sh apt)", tool, err)
		}
	}
	oras, cosign := filepath.Join(env.Tools, "oras"), filepath.Join(env.Tools, "cosign3")
	for _, tool := range []string{oras, cosign} {
		if _, err := os.Stat(tool); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (make tools)", tool, err)
		}
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	reg, err := env.startRegistry()
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, reg.Stop)
	d, err := newDaemon(env, "daemon-cold")
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, d.stop)
	repo := reg.Host + "/cold/" + strings.TrimSuffix(coldObject, ".bpf.o")
	if err := d.buildImages(ctx, reg.Host+"/cold", coldObject); err != nil {
		return nil, nil, err
	}
	digest := strings.TrimPrefix(d.refs[coldObject], repo+"@")
	if err := d.writePolicy(reg.Host + "/**"); err != nil {
		return nil, nil, err
	}
	if err := d.start(ctx); err != nil {
		return nil, nil, err
	}
	ours, theirs, delVeth, err := vethPair(ctx)
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, delVeth)

	peer := filepath.Join(d.dir, "peer")
	peerFS, pulled, home := filepath.Join(peer, "bpffs"), filepath.Join(peer, "pulled"), filepath.Join(peer, "home")
	pin := filepath.Join(peerFS, "prog")
	if err := os.MkdirAll(peerFS, 0o700); err != nil {
		return nil, nil, err
	}
	if err := syscall.Mount("bpffs", peerFS, "bpf", 0, ""); err != nil {
		return nil, nil, fmt.Errorf("mount bpffs: %w", err)
	}
	cleanups = append(cleanups, func() { syscall.Unmount(peerFS, syscall.MNT_DETACH) })
	// No credentials or cosign TUF cache of the machine's.
	toolEnv := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "TUF_ROOT=" + filepath.Join(home, "tuf")}

	ref := repo + ":v1"
	row := Row{
		Name: "bpfd: cold signed load+attach xdp from the local registry (resolve, verify, pull, load, attach)",
		Ours: Side{
			Name: "bpfctl load image REGISTRY/REPO:TAG (bpfd, empty cache)",
			Prepare: func(ctx context.Context) error {
				if err := d.unloadAll(ctx); err != nil {
					return err
				}
				if err := noXDP(ours); err != nil {
					return err
				}
				if err := d.terminate(); err != nil {
					return err
				}
				if err := os.RemoveAll(d.cacheDir); err != nil {
					return err
				}
				return d.start(ctx)
			},
			Run: func(ctx context.Context) error {
				_, err := d.bpfctl(ctx, "load", "image", ref, "--program", "xdp_counter:xdp", "--interface", ours)
				return err
			},
			Check: func(ctx context.Context) error {
				list, err := d.client.List(ctx, &pb.ListRequest{})
				if err != nil {
					return err
				}
				if ps := list.GetPrograms(); len(ps) != 1 || ps[0].GetProvenance().GetDigest() != digest {
					return fmt.Errorf("bpfd lists %v after the load, want one program of %s", ps, digest)
				}
				return hasXDP(ours)
			},
		},
		Peer: &Side{
			Name: "oras resolve + cosign v3 verify + oras pull + bpftool prog load + net attach xdp",
			Prepare: func(ctx context.Context) error {
				if err := runCommands(ctx, command{Path: "bpftool", Args: []string{"net", "detach", "xdp", "dev", theirs}}); err != nil {
					return err
				}
				if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				if err := os.RemoveAll(pulled); err != nil {
					return err
				}
				return noXDP(theirs)
			},
			Run: func(ctx context.Context) error {
				cmd := exec.CommandContext(ctx, oras, "resolve", "--plain-http", ref)
				cmd.Env = append(os.Environ(), toolEnv...)
				out, err := cmd.Output()
				if err != nil {
					return fmt.Errorf("oras resolve %s: %w", ref, err)
				}
				byDigest := repo + "@" + strings.TrimSpace(string(out))
				return runCommands(ctx,
					command{Path: cosign, Args: []string{"verify", "--key", d.key.PubFile, "--insecure-ignore-tlog=true", "--allow-http-registry", byDigest}, Env: toolEnv},
					command{Path: oras, Args: []string{"pull", "--plain-http", "-o", pulled, byDigest}, Env: toolEnv},
					command{Path: "bpftool", Args: []string{"prog", "load", filepath.Join(pulled, coldObject), pin, "type", "xdp"}},
					command{Path: "bpftool", Args: []string{"net", "attach", "xdp", "pinned", pin, "dev", theirs}},
				)
			},
			Check: func(context.Context) error {
				if _, err := os.Stat(pin); err != nil {
					return err
				}
				return hasXDP(theirs)
			},
		},
	}
	cleanups = append(cleanups, func() {
		exec.Command("bpftool", "net", "detach", "xdp", "dev", theirs).Run()
		os.Remove(pin)
	})
	return []Row{row}, cleanup, nil
}

// hasXDP fails unless iface runs an XDP program.
func hasXDP(iface string) error {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return err
	}
	if x := l.Attrs().Xdp; x == nil || x.ProgId == 0 {
		return fmt.Errorf("%s runs no XDP program after the load", iface)
	}
	return nil
}
