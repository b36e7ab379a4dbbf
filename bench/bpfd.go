package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/pkg/verify"
	pb "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// benchDaemon is a bpfd process on a socket, state dir, cache and bpffs of
// its own, with a signing key whose artifacts its policy admits.
type benchDaemon struct {
	env                                    *Env
	dir, socket, bpffs, stateDir, cacheDir string
	config, policy, log                    string
	key                                    *testimage.Key
	refs                                   map[string]string // object name -> reference by digest
	cmd                                    *exec.Cmd
	exited                                 chan struct{} // closed once cmd has exited
	conn                                   *grpc.ClientConn
	client                                 pb.BpfdClient
	health                                 healthpb.HealthClient
}

// newDaemon prepares a daemon's directories, configuration and key; start
// starts it once the artifacts are built and the policy written.
func newDaemon(env *Env, name string) (*benchDaemon, error) {
	for _, bin := range []string{"bpfd", "bpfctl"} {
		if _, err := os.Stat(filepath.Join(env.Bin, bin)); err != nil {
			return nil, fmt.Errorf("%s: %w (make build)", bin, err)
		}
	}
	d := &benchDaemon{env: env, dir: filepath.Join(env.Dir, name), refs: map[string]string{}}
	d.socket = filepath.Join(d.dir, "bpfd.sock")
	d.bpffs = filepath.Join(d.dir, "bpffs")
	d.stateDir = filepath.Join(d.dir, "state")
	d.cacheDir = filepath.Join(d.dir, "cache")
	d.config = filepath.Join(d.dir, "bpfd.yaml")
	d.policy = filepath.Join(d.dir, "policy.yaml")
	d.log = filepath.Join(d.dir, "bpfd.log")
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.config, []byte("apiVersion: bpfd.io/v1alpha1\nkind: DaemonConfig\n"), 0o600); err != nil {
		return nil, err
	}
	var err error
	if d.key, err = testimage.NewKey(d.dir, "bench"); err != nil {
		return nil, err
	}
	return d, nil
}

// buildImages builds an artifact of each object (from bytecode/) at
// prefix/NAME:v1, prefix an oci: layout directory or a registry, signs it
// in the bundle format, and records its reference by digest in d.refs.
func (d *benchDaemon) buildImages(ctx context.Context, prefix string, objects ...string) error {
	for _, o := range objects {
		ref, err := testimage.Build(ctx, prefix+"/"+strings.TrimSuffix(o, ".bpf.o")+":v1", filepath.Join(d.env.Root, "bytecode", o))
		if err != nil {
			return err
		}
		if err := d.key.Sign(ctx, ref, verify.FormatBundle); err != nil {
			return err
		}
		d.refs[o] = ref
	}
	return nil
}

// writePolicy admits the images matching pattern signed by d's key.
func (d *benchDaemon) writePolicy(pattern string) error {
	return testimage.WritePolicy(d.policy, testimage.Rule{Name: "bench", Images: []string{pattern}, Keys: []string{d.key.PubFile}})
}

// startDaemon builds and signs artifacts of objects in an OCI layout,
// starts bin/bpfd and pre-pulls the artifacts, so that loads come from a
// cached digest.
func startDaemon(ctx context.Context, env *Env, name string, objects ...string) (_ *benchDaemon, err error) {
	d, err := newDaemon(env, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.stop()
		}
	}()
	images := filepath.Join(d.dir, "images")
	if err := d.buildImages(ctx, "oci:"+images, objects...); err != nil {
		return nil, err
	}
	if err := d.writePolicy("oci:" + images + "/**"); err != nil {
		return nil, err
	}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	for _, ref := range d.refs {
		if _, err := d.client.PullImage(ctx, &pb.PullImageRequest{Bytecode: &pb.Bytecode{Reference: ref}}); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
	}
	return d, nil
}

// start starts bin/bpfd and returns once its health service reports the
// bpfd.v1 service SERVING. The client connection outlives restarts and
// reconnects within milliseconds.
func (d *benchDaemon) start(ctx context.Context) error {
	logFile, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d.cmd = exec.Command(filepath.Join(d.env.Bin, "bpfd"), "--config", d.config, "--socket", d.socket,
		"--state-dir", d.stateDir, "--cache-dir", d.cacheDir, "--bpffs", d.bpffs, "--policy", d.policy, "--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	d.exited = exited
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(d.cmd)
	if d.conn == nil {
		if d.conn, err = grpc.NewClient("unix://"+d.socket,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: time.Millisecond, Multiplier: 1.5, MaxDelay: 20 * time.Millisecond}, MinConnectTimeout: time.Second}),
		); err != nil {
			return err
		}
		d.client, d.health = pb.NewBpfdClient(d.conn), healthpb.NewHealthClient(d.conn)
	}
	return d.waitServing(ctx, 60*time.Second)
}

// waitServing polls until the socket accepts connections and the health
// service reports bpfd.v1 SERVING.
func (d *benchDaemon) waitServing(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("bpfd exited before serving (log: %s)", d.log)
		default:
		}
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := d.health.Check(cctx, &healthpb.HealthCheckRequest{Service: pb.Bpfd_ServiceDesc.ServiceName}, grpc.WaitForReady(true))
			cancel()
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bpfd does not serve on %s after %s (log: %s)", d.socket, timeout, d.log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// terminate sends bpfd SIGTERM and waits for it to exit. Programs stay
// loaded: the next start adopts them.
func (d *benchDaemon) terminate() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	err := d.cmd.Process.Signal(syscall.SIGTERM)
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	<-d.exited
	d.cmd = nil
	return err
}

// unloadAll unloads every program bpfd manages.
func (d *benchDaemon) unloadAll(ctx context.Context) error {
	list, err := d.client.List(ctx, &pb.ListRequest{})
	if err != nil {
		return err
	}
	var ids []uint64
	for _, p := range list.GetPrograms() {
		ids = append(ids, p.GetId())
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = d.client.Unload(ctx, &pb.UnloadRequest{Ids: ids})
	return err
}

// stop unloads everything, stops bpfd and unmounts its bpffs.
func (d *benchDaemon) stop() {
	if d.client != nil && d.cmd != nil {
		d.unloadAll(context.Background())
	}
	d.terminate()
	if d.conn != nil {
		d.conn.Close()
	}
	syscall.Unmount(d.bpffs, syscall.MNT_DETACH)
}

// bpfctl runs bin/bpfctl against the daemon and returns its output.
func (d *benchDaemon) bpfctl(ctx context.Context, args ...string) ([]byte, error) {
	return runTool(ctx, filepath.Join(d.env.Bin, "bpfctl"), append([]string{"--socket", d.socket}, args...)...)
}
