package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/daemon"
	"github.com/bpfd-dev/bpfd/internal/testing/testimage"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

func TestMain(m *testing.M) { testutil.LeakCheckMain(m) }

// node is a real bpfd serving in this process on a socket in a temporary
// directory, with a trust policy that trusts one key for the artifacts under
// images/, and the signed and unsigned artifacts the tests load.
type node struct {
	socket           string
	signed, unsigned string
	bpffs            string
	// policy, auditFile and metrics (host:port) are bpfd's.
	policy, auditFile, metrics string
	// mapEvents is a signed artifact of map_events naming its ring
	// buffer's record type.
	mapEvents string
	// images is the directory of OCI layouts the trust policy's rule covers;
	// key signs for it.
	images string
	key    testimage.Key
}

// signingKey is the tests' one signing key, with its public key's PEM:
// generating a key takes seconds on the kernel VM's emulated CPU. Each node
// writes the public key into its own directory.
var signingKey = sync.OnceValues(func() (signingKeyPair, error) {
	dir, err := os.MkdirTemp("", "bpfctl-e2e-key-")
	if err != nil {
		return signingKeyPair{}, err
	}
	defer os.RemoveAll(dir)
	key, err := testimage.NewKey(dir, "key")
	if err != nil {
		return signingKeyPair{}, err
	}
	pub, err := os.ReadFile(key.PubFile)
	return signingKeyPair{key, pub}, err
})

type signingKeyPair struct {
	key *testimage.Key
	pub []byte
}

func startNode(t *testing.T) *node {
	t.Helper()
	testutil.RequirePrivileged(t)
	ctx := context.Background()
	dir := t.TempDir()
	images := filepath.Join(dir, "images")
	objects := func(names ...string) []string {
		for i, n := range names {
			names[i] = filepath.Join("..", "..", "bytecode", n)
		}
		return names
	}
	pair, err := signingKey()
	if err != nil {
		t.Fatal(err)
	}
	key := *pair.key
	key.PubFile = filepath.Join(dir, "key.pub")
	if err := os.WriteFile(key.PubFile, pair.pub, 0o644); err != nil {
		t.Fatal(err)
	}
	n := &node{socket: filepath.Join(dir, "bpfd.sock"), bpffs: filepath.Join(dir, "bpffs"), images: images, key: key}
	counters := objects("xdp_counter.bpf.o", "tracepoint_counter.bpf.o", "kprobe_counter.bpf.o")
	if n.signed, err = testimage.Build(ctx, "oci:"+filepath.Join(images, "counters")+":v1", counters...); err != nil {
		t.Fatal(err)
	}
	if err := key.Sign(ctx, n.signed, verify.FormatBundle); err != nil {
		t.Fatal(err)
	}
	n.mapEvents, err = testimage.BuildAnnotated(ctx, "oci:"+filepath.Join(images, "map-events")+":v1",
		map[string]string{daemon.ArtifactRecordTypeKey + "events_rb": "struct event"}, objects("map_events.bpf.o")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Sign(ctx, n.mapEvents, verify.FormatBundle); err != nil {
		t.Fatal(err)
	}
	if n.unsigned, err = testimage.Build(ctx, "oci:"+filepath.Join(images, "unsigned")+":v1", objects("xdp_counter.bpf.o")...); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := testimage.WritePolicy(policy, testimage.Rule{Name: "images", Images: []string{"oci:" + images + "/**"}, Keys: []string{key.PubFile}}); err != nil {
		t.Fatal(err)
	}
	n.policy, n.auditFile, n.metrics = policy, filepath.Join(dir, "audit.log"), freeLoopbackPort(t)
	cfg, err := daemon.ParseConfig(nil, func(c *daemon.Config) {
		c.Socket.Path, c.Socket.Group = n.socket, ""
		c.StateDir, c.BpffsDir, c.PolicyFile = filepath.Join(dir, "state"), n.bpffs, policy
		c.Log.AuditFile = n.auditFile
		c.Metrics.Address = n.metrics
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(ctx, cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	ready, served := make(chan struct{}), make(chan error, 1)
	go func() { served <- d.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-served:
		d.Close()
		t.Fatalf("bpfd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("bpfd: %v", err)
		}
		d.Close()
		unix.Unmount(n.bpffs, unix.MNT_DETACH)
	})
	return n
}

// freeLoopbackPort returns a loopback address with a port free a moment
// ago, for bpfd's metrics.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// bpfctl runs the command line against the node and returns its exit code
// and output.
func (n *node) bpfctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"bpfctl", "--socket", n.socket}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustBpfctl runs the command line and fails the test unless it succeeds.
func (n *node) mustBpfctl(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := n.bpfctl(t, args...)
	if code != cliutil.ExitOK {
		t.Fatalf("bpfctl %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// loadJSON loads with -o json and returns the programs loaded.
func (n *node) loadJSON(t *testing.T, args ...string) []programJSON {
	t.Helper()
	var list programListJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, append(args, "-o", "json")...)), &list); err != nil {
		t.Fatal(err)
	}
	return list.Programs
}

// TestXDPThroughBpfctl loads the signed XDP counter with bpfctl onto a veth
// pair, watches it count real traffic, reads it back with list and get, and
// unloads it.
func TestXDPThroughBpfctl(t *testing.T) {
	n := startNode(t)
	v := testutil.NewVethPair(t)
	progs := n.loadJSON(t, "load", "image", n.signed, "--program", "xdp_counter:xdp", "--interface", v.Peer, "--netns", v.Netns, "--metadata", "app=e2e")
	if len(progs) != 1 || progs[0].Provenance.Rule != "images" || progs[0].Provenance.Signer == "" || progs[0].Kernel.ProgramID == 0 {
		t.Fatalf("load returned %+v: want one program admitted by rule images with a signer and a kernel id", progs)
	}
	p := progs[0]
	id := strconv.FormatUint(p.ID, 10)

	v.SendUDP(t, 20)
	counts := mapPin(t, p, "xdp_stats")
	if got := testutil.ReadU64(t, counts, uint32(17)); got != 20 {
		t.Errorf("xdp_counter counted %d UDP packets, want 20", got)
	}

	list := n.mustBpfctl(t, "list", "--selector", "app=e2e")
	for _, want := range []string{id, "xdp_counter", v.Peer, "app=e2e", "uid 0", "admitted"} {
		if !strings.Contains(list, want) {
			t.Errorf("bpfctl list lacks %q:\n%s", want, list)
		}
	}
	// Alone on its hook it runs with no dispatcher.
	if strings.Contains(list, "linked") || strings.Contains(list, "freplace") {
		t.Errorf("bpfctl list shows a dispatcher mode for a lone program:\n%s", list)
	}
	if got := n.mustBpfctl(t, "list", "--selector", "app=other"); strings.Contains(got, "xdp_counter") {
		t.Errorf("list --selector app=other shows the program:\n%s", got)
	}
	hooks := n.mustBpfctl(t, "list", "--hooks")
	if !strings.Contains(hooks, "xdp "+v.Peer) {
		t.Errorf("bpfctl list --hooks lacks the xdp hook on %s:\n%s", v.Peer, hooks)
	}
	get := n.mustBpfctl(t, "get", id)
	for _, want := range []string{"Digest:", p.Provenance.Digest, "Policy rule:    images", "Map xdp_stats:", "dispatcher none", "Owner:          uid 0", "Admission:      admitted", "Origin:         oci:"} {
		if !strings.Contains(get, want) {
			t.Errorf("bpfctl get lacks %q:\n%s", want, get)
		}
	}

	n.mustBpfctl(t, "unload", id)
	if _, err := os.Stat(filepath.Join(n.bpffs, id)); !os.IsNotExist(err) {
		t.Errorf("pins of %s remain after unload: %v", id, err)
	}
	if code, _, stderr := n.bpfctl(t, "get", id); code != cliutil.ExitNotFound || !strings.Contains(stderr, "not found") {
		t.Errorf("get of an unloaded id: exit %d, %q; want %d and not found", code, stderr, cliutil.ExitNotFound)
	}
}

// TestCacheThroughBpfctl lists bpfd's cache after a load and a denied pull,
// then prunes it: the loaded program's artifact stays.
func TestCacheThroughBpfctl(t *testing.T) {
	n := startNode(t)
	p := n.loadJSON(t, "load", "image", n.signed, "--program", "tracepoint_counter:tracepoint")[0]
	if p.OwnerUID != 0 || p.Admission == nil || !p.Admission.Admitted || p.Admission.Rule != "images" {
		t.Errorf("program %+v: want owner uid 0, admitted by rule images", p)
	}
	if code, _, _ := n.bpfctl(t, "pull", n.unsigned); code != cliutil.ExitDenied {
		t.Fatalf("pull of the unsigned artifact: exit %d, want %d", code, cliutil.ExitDenied)
	}
	var list cacheListJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "cache", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Entries) != 2 || list.Size == 0 || list.MaxSize == 0 {
		t.Fatalf("cache list %+v: want two artifacts, a size and a limit", list)
	}
	kept := ""
	for _, e := range list.Entries {
		if len(e.ProgramIDs) == 1 && e.ProgramIDs[0] == p.ID {
			kept = e.Digest
			if !e.Complete || len(e.Origins) != 1 || e.Origins[0].Decision != "allow" {
				t.Errorf("entry %+v: want complete, admitted from one origin", e)
			}
		} else if e.Complete || len(e.Origins) != 1 || e.Origins[0].Decision != "deny" || e.Origins[0].Reason != "unsigned" {
			t.Errorf("entry %+v: want only signatures of a denied artifact", e)
		}
	}
	if kept != p.Provenance.Digest {
		t.Fatalf("no cache entry names program %d: %+v", p.ID, list.Entries)
	}
	table := n.mustBpfctl(t, "cache", "list")
	for _, want := range []string{"DIGEST", "ORIGIN", "deny (unsigned)", "2 artifacts"} {
		if !strings.Contains(table, want) {
			t.Errorf("cache list lacks %q:\n%s", want, table)
		}
	}
	out := n.mustBpfctl(t, "cache", "prune", "--all")
	if !strings.Contains(out, "removed 1 artifacts") {
		t.Errorf("cache prune --all: %q, want one artifact removed", out)
	}
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "cache", "list", "-o", "json")), &list); err != nil || len(list.Entries) != 1 || list.Entries[0].Digest != kept {
		t.Errorf("cache after prune %+v (%v): want the loaded artifact only", list.Entries, err)
	}
	if code, _, stderr := n.bpfctl(t, "cache", "list", "extra"); code != cliutil.ExitUsage {
		t.Errorf("cache list extra: exit %d %q, want a usage error", code, stderr)
	}
	n.mustBpfctl(t, "unload", strconv.FormatUint(p.ID, 10))
}

// TestTracepointThroughBpfctl loads the openat counter with bpfctl and sees
// it count this process's calls.
func TestTracepointThroughBpfctl(t *testing.T) {
	n := startNode(t)
	p := n.loadJSON(t, "load", "image", n.signed, "--program", "tracepoint_counter:tracepoint")[0]
	for range 5 {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got := testutil.ReadU64(t, mapPin(t, p, "openat_calls"), uint32(os.Getpid())); got < 5 {
		t.Errorf("tracepoint_counter counted %d openat calls of this process, want at least 5", got)
	}
	n.mustBpfctl(t, "unload", strconv.FormatUint(p.ID, 10))
}

// TestMapReadersThroughBpfctl loads a program for a config whose maps pods
// of namespace apps may mount, reads its owner back with get, and changes
// the map readers in place: the program stays loaded and its map keeps
// counting.
func TestMapReadersThroughBpfctl(t *testing.T) {
	n := startNode(t)
	p := n.loadJSON(t, "load", "image", n.signed, "--program", "tracepoint_counter:tracepoint", "--owner-config", "openat-counter", "--map-reader", "apps")[0]
	id := strconv.FormatUint(p.ID, 10)
	if p.Owner == nil || p.Owner.Config != "openat-counter" || !slices.Equal(p.Owner.MapReaderNamespaces, []string{"apps"}) || p.OwnerUID != uint32(os.Getuid()) {
		t.Fatalf("load returned owner %+v, uid %d; want config openat-counter, map readers [apps], uid %d", p.Owner, p.OwnerUID, os.Getuid())
	}
	get := n.mustBpfctl(t, "get", id)
	for field, want := range map[string]string{
		"Owner":       "config openat-counter, namespace (none), uid 0",
		"Map readers": "pods of namespaces apps (csi.bpfd.io volume, config openat-counter)",
	} {
		if got := getField(get, field); got != want {
			t.Errorf("bpfctl get: %s %q, want %q:\n%s", field, got, want, get)
		}
	}
	counts := mapPin(t, p, "openat_calls")
	before := testutil.ReadU64(t, counts, uint32(os.Getpid()))

	if got, want := n.mustBpfctl(t, "map-readers", id, "-n", "web", "-n", "apps"), "program "+id+" (config openat-counter): map readers web, apps\n"; got != want {
		t.Errorf("map-readers printed %q, want %q", got, want)
	}
	var after programJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "get", id, "-o", "json")), &after); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after.Owner.MapReaderNamespaces, []string{"web", "apps"}) || after.Kernel.ProgramID != p.Kernel.ProgramID || mapPin(t, after, "openat_calls") != counts {
		t.Errorf("after map-readers: owner %+v, kernel program %d, pin %s; want [web apps] on kernel program %d, pin %s",
			after.Owner, after.Kernel.ProgramID, mapPin(t, after, "openat_calls"), p.Kernel.ProgramID, counts)
	}
	if f, err := os.Open("/proc/self/stat"); err == nil {
		f.Close()
	}
	if got := testutil.ReadU64(t, counts, uint32(os.Getpid())); got <= before {
		t.Errorf("the map counted %d openat calls of this process, %d before changing the map readers: want more", got, before)
	}
	if got := n.mustBpfctl(t, "map-readers", id, "--none"); !strings.HasSuffix(got, "map readers none\n") {
		t.Errorf("map-readers --none printed %q", got)
	}

	plain := n.loadJSON(t, "load", "image", n.signed, "--program", "tracepoint_counter:tracepoint")[0]
	plainID := strconv.FormatUint(plain.ID, 10)
	if get := n.mustBpfctl(t, "get", plainID); !strings.HasPrefix(getField(get, "Map readers"), "(none: no owner config") || getField(get, "Owner") != "uid "+strconv.Itoa(os.Getuid()) {
		t.Errorf("get of a program loaded without owner does not say that no volume can name it:\n%s", get)
	}
	for name, tc := range map[string]struct {
		args     []string
		code     int
		fragment string
	}{
		"neither --namespace nor --none": {args: []string{"map-readers", id}, code: cliutil.ExitUsage, fragment: "want --namespace NS (repeatable) or --none"},
		"both --namespace and --none":    {args: []string{"map-readers", id, "-n", "apps", "--none"}, code: cliutil.ExitUsage, fragment: "want --namespace NS (repeatable) or --none"},
		"no config":                      {args: []string{"map-readers", plainID, "-n", "apps"}, code: cliutil.ExitError, fragment: "program " + plainID + " belongs to no config"},
		"programs of two owners":         {args: []string{"map-readers", id, plainID, "-n", "apps"}, code: cliutil.ExitUsage, fragment: "only map_reader_namespaces may change"},
		"not a namespace name":           {args: []string{"map-readers", id, "-n", "Apps_1"}, code: cliutil.ExitUsage, fragment: `"Apps_1": not a namespace name`},
		"unknown id":                     {args: []string{"map-readers", "424242", "-n", "apps"}, code: cliutil.ExitNotFound, fragment: "424242"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := n.bpfctl(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.fragment) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one line mentioning %q", code, stdout, stderr, tc.code, tc.fragment)
			}
		})
	}
	var still programJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "get", id, "-o", "json")), &still); err != nil || still.Owner == nil || len(still.Owner.MapReaderNamespaces) != 0 {
		t.Errorf("after the refusals the owner is %+v (%v), want config openat-counter and no map readers", still.Owner, err)
	}
	n.mustBpfctl(t, "unload", id, plainID)
}

// TestKprobeThroughBpfctl loads kprobe and kretprobe on getpid with one
// bpfctl command line. It needs kprobes: it runs in the kernel VM.
func TestKprobeThroughBpfctl(t *testing.T) {
	testutil.RequireKernelFeature(t, testutil.FeatureKprobe)
	testutil.RequireKernelFeature(t, testutil.FeatureKretprobe)
	n := startNode(t)
	progs := n.loadJSON(t, "load", "image", n.signed, "--program", "kprobe_counter:kprobe", "--program", "kretprobe_counter:kretprobe")
	for range 10 {
		unix.Getpid()
	}
	calls := mapPin(t, progs[0], "kprobe_calls")
	if entries, returns := testutil.ReadU64(t, calls, uint32(0)), testutil.ReadU64(t, calls, uint32(1)); entries < 10 || returns < 10 {
		t.Errorf("counted %d entries and %d returns of getpid, want at least 10 each", entries, returns)
	}
	n.mustBpfctl(t, "unload", strconv.FormatUint(progs[0].ID, 10), strconv.FormatUint(progs[1].ID, 10))
}

// TestBpfctlRefusals checks bpfctl's exit codes and one-line messages for
// what the node refuses, and that nothing was loaded.
func TestBpfctlRefusals(t *testing.T) {
	n := startNode(t)
	v := testutil.NewVethPair(t)
	cases := map[string]struct {
		args     []string
		code     int
		fragment string
	}{
		"unsigned":          {args: []string{"load", "image", n.unsigned, "--program", "xdp_counter:xdp", "-i", v.Peer, "--netns", v.Netns}, code: cliutil.ExitDenied, fragment: "denied by the trust policy: unsigned"},
		"unknown program":   {args: []string{"load", "image", n.signed, "--program", "nope:xdp", "-i", v.Peer, "--netns", v.Netns}, code: cliutil.ExitNotFound, fragment: "nope"},
		"missing interface": {args: []string{"load", "image", n.signed, "--program", "xdp_counter:xdp", "-i", "bpfdnoif0"}, code: cliutil.ExitNotFound, fragment: "bpfdnoif0"},
		"type mismatch":     {args: []string{"load", "image", n.signed, "--program", "xdp_counter:tracepoint"}, code: cliutil.ExitUsage, fragment: "xdp_counter"},
		"bad priority":      {args: []string{"load", "image", n.signed, "--program", "xdp_counter:xdp", "-i", v.Peer, "--netns", v.Netns, "--priority", "5000"}, code: cliutil.ExitUsage, fragment: "priority"},
		"unknown id":        {args: []string{"unload", "424242"}, code: cliutil.ExitNotFound, fragment: "424242"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := n.bpfctl(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.fragment) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "bpfctl: ") {
				t.Errorf("exit %d, stderr %q; want exit %d and one line mentioning %q", code, stderr, tc.code, tc.fragment)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	var list programListJSON
	if err := json.Unmarshal([]byte(n.mustBpfctl(t, "list", "-o", "json")), &list); err != nil || len(list.Programs) != 0 {
		t.Errorf("after refusals list shows %+v (%v), want nothing", list.Programs, err)
	}
}

// getField returns the value of field in get's output, "" when absent.
func getField(get, field string) string {
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func mapPin(t *testing.T, p programJSON, name string) string {
	t.Helper()
	for _, m := range p.Maps {
		if m.Name == name {
			return m.PinPath
		}
	}
	t.Fatalf("program %d has no map %s", p.ID, name)
	return ""
}
