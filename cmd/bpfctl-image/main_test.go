package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

const bytecodeDir = "../../bytecode"

// result is what one run of bpfctl-image gave.
type result struct {
	code           int
	stdout, stderr string
}

// bpfctlImage runs the app in-process, as the binary would.
func bpfctlImage(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"bpfctl-image"}, args...), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// ok runs bpfctl-image and fails the test unless it succeeds.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := bpfctlImage(t, args...)
	if r.code != cliutil.ExitOK {
		t.Fatalf("bpfctl-image %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func object(name string) string { return filepath.Join(bytecodeDir, name+".bpf.o") }

// TestRoundTrip builds, pushes to a real registry, pulls and inspects, all
// from the command line.
func TestRoundTrip(t *testing.T) {
	reg := testutil.StartRegistry(t)
	dir := t.TempDir()
	layout := "oci:" + filepath.Join(dir, "layout") + ":v1"
	objects := []string{object("xdp_verdict"), object("packet_counters")}

	digest := strings.TrimSpace(ok(t, append([]string{"build", "--dest", layout, "--annotation", "org.opencontainers.image.source=https://example.com/bpf"}, objects...)...))
	again := strings.TrimSpace(ok(t, append([]string{"build", "--dest", "oci:" + filepath.Join(dir, "again"), "--annotation", "org.opencontainers.image.source=https://example.com/bpf"}, objects[1], objects[0])...))
	if digest != again || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("two builds of the same objects: %q and %q", digest, again)
	}

	remote := reg.Host + "/bytecode/counters:v1"
	if got := strings.TrimSpace(ok(t, "push", layout, remote)); got != digest {
		t.Errorf("push printed %s, want %s", got, digest)
	}

	out := filepath.Join(dir, "pulled")
	var pulled pullOutput
	if err := json.Unmarshal([]byte(ok(t, "pull", "--dest", out, remote, "--output", "json")), &pulled); err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		want, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, filepath.Base(o)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("pulled %s: %v, equal %v", filepath.Base(o), err, bytes.Equal(got, want))
		}
	}
	var metadata pullOutput
	data, err := os.ReadFile(filepath.Join(out, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &metadata); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pulled, metadata); diff != "" {
		t.Errorf("metadata.json differs from pull --output json (-stdout +file):\n%s", diff)
	}
	if string(pulled.Digest) != digest || pulled.Format != "bpfd" || pulled.Config.Build.Source != "https://example.com/bpf" {
		t.Errorf("pull: digest %s, format %s, source %q", pulled.Digest, pulled.Format, pulled.Config.Build.Source)
	}

	var inspected inspectOutput
	if err := json.Unmarshal([]byte(ok(t, "inspect", "--output", "json", remote)), &inspected); err != nil {
		t.Fatal(err)
	}
	m := inspected.Manifests[0]
	got := map[string]any{
		"digest": string(inspected.Digest), "artifactType": inspected.ArtifactType, "format": m.Format,
		"objects": len(m.Config.Objects), "global": m.Config.Objects[1].DataSections[1].Globals[0].Name,
	}
	want := map[string]any{
		"digest": digest, "artifactType": artifact.ArtifactType, "format": "bpfd",
		"objects": 2, "global": "verdict",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inspect (-want +got):\n%s", diff)
	}
	text := ok(t, "inspect", remote)
	for _, s := range []string{digest, "Format:         bpfd", "xdp_ingress_counter", "packet_stats", "verdict  .rodata  yes"} {
		if !strings.Contains(text, s) {
			t.Errorf("inspect text lacks %q:\n%s", s, text)
		}
	}

	// oras pulls the same objects.
	orasDir := t.TempDir()
	cmd := exec.Command(testutil.Tool(t, "oras"), "pull", "--plain-http", "-o", orasDir, remote)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras pull: %v\n%s", err, out)
	}
	for _, o := range objects {
		if _, err := os.Stat(filepath.Join(orasDir, filepath.Base(o))); err != nil {
			t.Errorf("oras pull: %v", err)
		}
	}
}

func TestBuildPlatformsAndEpoch(t *testing.T) {
	dir := t.TempDir()
	var built buildOutput
	if err := json.Unmarshal([]byte(ok(t, "build", "--output", "json", "--dest", "oci:"+dir+"/multi",
		"--platform", "linux/s390x=../../pkg/artifact/testdata/xdp_counter_be.bpf.o",
		"--platform", "linux/bpfel="+object("xdp_counter")+","+object("tc_counter"))), &built); err != nil {
		t.Fatal(err)
	}
	want := buildOutput{
		Envelope: newEnvelope("Build"), Reference: "oci:" + dir + "/multi:latest@" + string(built.Digest), Digest: built.Digest,
		MediaType: "application/vnd.oci.image.index.v1+json", Size: built.Size,
		Platforms: []string{"linux/bpfel", "linux/s390x"}, Programs: []string{"tc_counter", "tcx_counter", "xdp_counter"},
	}
	if diff := cmp.Diff(want, built); diff != "" {
		t.Errorf("build --output json (-want +got):\n%s", diff)
	}
	var pulled pullOutput
	if err := json.Unmarshal([]byte(ok(t, "pull", "--platform", "linux/arm64", "--dest", dir+"/arm64", "--output", "json", "oci:"+dir+"/multi")), &pulled); err != nil {
		t.Fatal(err)
	}
	if pulled.Platform != "linux/bpfel" || len(pulled.Files) != 3 {
		t.Errorf("pull for linux/arm64: platform %s, files %v", pulled.Platform, pulled.Files)
	}

	plain := strings.TrimSpace(ok(t, "build", "--dest", "oci:"+dir+"/a", object("xdp_counter")))
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dated := strings.TrimSpace(ok(t, "build", "--dest", "oci:"+dir+"/b", object("xdp_counter")))
	if plain == dated {
		t.Errorf("SOURCE_DATE_EPOCH did not change the digest %s", plain)
	}
	if !strings.Contains(ok(t, "inspect", "oci:"+dir+"/b"), "org.opencontainers.image.created=2023-11-14T22:13:20Z") {
		t.Error("inspect does not show the created time from SOURCE_DATE_EPOCH")
	}
}

// TestBadInput runs every kind of bad input: each must exit non-zero with one
// line on stderr naming the file or reference and the cause, and leave its
// target as it was.
func TestBadInput(t *testing.T) {
	reg := testutil.StartRegistry(t)
	down := testutil.StartRegistry(t)
	down.Stop()
	dir := t.TempDir()
	files := map[string][]byte{"notes.o": []byte("not an object\n"), "empty.o": nil}
	xdp, err := os.ReadFile(object("xdp_counter"))
	if err != nil {
		t.Fatal(err)
	}
	files["truncated.o"] = xdp[:len(xdp)/2]
	files["copy.bpf.o"] = xdp
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// An existing layout and registry tag, with v1 on an older artifact that
	// no failed command may move.
	existing := "oci:" + dir + "/existing:v1"
	ok(t, "build", "--dest", existing, object("tc_counter"))
	multi := "oci:" + dir + "/multi:v1"
	ok(t, "build", "--dest", multi, "--platform", "linux/amd64="+object("xdp_counter"))
	remote := reg.Host + "/bytecode/xdp:v1"
	remoteDigest := strings.TrimSpace(ok(t, "build", "--dest", remote, object("tc_counter")))

	// A layout whose xdp_counter layer was tampered with.
	tampered := dir + "/tampered"
	ok(t, "build", "--dest", "oci:"+tampered+":v1", object("xdp_counter"))
	d := digest.FromBytes(xdp).String()
	blob := filepath.Join(tampered, "blobs", "sha256", d[len("sha256:"):])
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[100] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// A layout holding another kind of artifact, pushed by oras.
	foreign := dir + "/foreign"
	if err := os.WriteFile(dir+"/readme.txt", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Tool(t, "oras"), "push", "--oci-layout", foreign+":v1", "--artifact-type", "application/vnd.example.readme.v1", "readme.txt:text/plain")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}

	newLayout := "oci:" + dir + "/new:v1"
	cases := map[string]struct {
		args     []string
		wantCode int
		wantMsg  string
	}{
		"not an ELF":         {args: []string{"build", "--dest", newLayout, dir + "/notes.o"}, wantCode: cliutil.ExitError, wantMsg: dir + "/notes.o: invalid BPF object: not an ELF file"},
		"ELF, not BPF":       {args: []string{"build", "--dest", newLayout, self}, wantCode: cliutil.ExitError, wantMsg: self + ": invalid BPF object: an ELF file for X86_64, not BPF"},
		"truncated":          {args: []string{"build", "--dest", existing, dir + "/truncated.o"}, wantCode: cliutil.ExitError, wantMsg: dir + "/truncated.o: invalid BPF object"},
		"no programs":        {args: []string{"build", "--dest", remote, "../../pkg/artifact/testdata/no_programs.bpf.o"}, wantCode: cliutil.ExitError, wantMsg: "no_programs.bpf.o: invalid BPF object: no BPF programs in it"},
		"same program twice": {args: []string{"build", "--dest", existing, object("xdp_counter"), dir + "/copy.bpf.o"}, wantCode: cliutil.ExitError, wantMsg: dir + "/copy.bpf.o: invalid BPF object: program xdp_counter is also declared by " + object("xdp_counter")},
		"empty file":         {args: []string{"build", "--dest", newLayout, dir + "/empty.o"}, wantCode: cliutil.ExitError, wantMsg: dir + "/empty.o: invalid BPF object: empty file"},
		"missing file":       {args: []string{"build", "--dest", remote, dir + "/missing.o"}, wantCode: cliutil.ExitError, wantMsg: dir + "/missing.o: no such file or directory"},
		"tampered layer, pull": {
			args: []string{"pull", "--dest", dir + "/out", "oci:" + tampered + ":v1"}, wantCode: cliutil.ExitError,
			wantMsg: "layer " + d + " (xdp_counter.bpf.o): content does not match its digest",
		},
		"tampered layer, push": {
			args: []string{"push", "oci:" + tampered + ":v1", remote}, wantCode: cliutil.ExitError,
			wantMsg: "layer " + d + " (xdp_counter.bpf.o): content does not match its digest",
		},
		"tampered layer, copy": {
			args: []string{"copy", "oci:" + tampered + ":v1", existing}, wantCode: cliutil.ExitError,
			wantMsg: "layer " + d + " (xdp_counter.bpf.o): content does not match its digest",
		},
		"unknown artifactType, inspect": {
			args: []string{"inspect", "oci:" + foreign + ":v1"}, wantCode: cliutil.ExitError,
			wantMsg: `unsupported artifact: artifactType "application/vnd.example.readme.v1" is not application/vnd.bpfd.bytecode.v1`,
		},
		"unknown artifactType, pull": {
			args: []string{"pull", "--dest", dir + "/out", "oci:" + foreign + ":v1"}, wantCode: cliutil.ExitError,
			wantMsg: "oci:" + foreign + ":v1: manifest sha256:",
		},
		"reference does not parse":    {args: []string{"build", "--dest", "Not/A Reference", object("xdp_counter")}, wantCode: cliutil.ExitUsage, wantMsg: `reference "Not/A Reference": not a registry reference`},
		"registry down, build":        {args: []string{"build", "--dest", down.Host + "/bytecode/xdp:v1", object("xdp_counter")}, wantCode: cliutil.ExitError, wantMsg: down.Host + "/bytecode/xdp:v1: registry unreachable"},
		"registry down, inspect":      {args: []string{"inspect", down.Host + "/bytecode/xdp:v1"}, wantCode: cliutil.ExitError, wantMsg: down.Host + "/bytecode/xdp:v1: registry unreachable"},
		"tag not found":               {args: []string{"inspect", reg.Host + "/bytecode/xdp:v9"}, wantCode: cliutil.ExitNotFound, wantMsg: reg.Host + "/bytecode/xdp:v9: not found"},
		"repository not found":        {args: []string{"pull", "--dest", dir + "/out", reg.Host + "/nothing/here:v1"}, wantCode: cliutil.ExitNotFound, wantMsg: reg.Host + "/nothing/here:v1: not found"},
		"layout not found":            {args: []string{"copy", "oci:" + dir + "/nowhere:v1", newLayout}, wantCode: cliutil.ExitNotFound, wantMsg: "oci:" + dir + "/nowhere: no OCI layout there: not found"},
		"platform not found":          {args: []string{"pull", "--platform", "linux/s390x", "--dest", dir + "/out", multi}, wantCode: cliutil.ExitNotFound, wantMsg: "no manifest for platform linux/s390x (has linux/amd64): not found"},
		"wrong byte order":            {args: []string{"pull", "--platform", "linux/s390x", "--dest", dir + "/out", existing}, wantCode: cliutil.ExitError, wantMsg: "little-endian objects, but linux/s390x is big-endian"},
		"no arguments":                {args: []string{"inspect"}, wantCode: cliutil.ExitUsage, wantMsg: "inspect: want inspect REF"},
		"files and platforms":         {args: []string{"build", "--dest", newLayout, "--platform", "linux/amd64=" + object("xdp_counter"), object("xdp_counter")}, wantCode: cliutil.ExitUsage, wantMsg: "give object files or --platform, not both"},
		"unknown architecture":        {args: []string{"build", "--dest", newLayout, "--platform", "linux/vax=" + object("xdp_counter")}, wantCode: cliutil.ExitUsage, wantMsg: `unknown architecture "vax"`},
		"big-endian object for amd64": {args: []string{"build", "--dest", newLayout, "--platform", "linux/amd64=../../pkg/artifact/testdata/xdp_counter_be.bpf.o"}, wantCode: cliutil.ExitError, wantMsg: "big-endian object for a little-endian platform"},
		"unknown flag":                {args: []string{"inspect", existing, "--bogus"}, wantCode: cliutil.ExitUsage, wantMsg: "flag provided but not defined: -bogus"},
		"bad output format":           {args: []string{"inspect", "--output", "yaml", existing}, wantCode: cliutil.ExitUsage, wantMsg: `--output "yaml": want text or json`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := snapshot(t, dir)
			r := bpfctlImage(t, tc.args...)
			if r.code != tc.wantCode {
				t.Errorf("exit %d, want %d", r.code, tc.wantCode)
			}
			if lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(r.stderr, "bpfctl-image: ") || !strings.Contains(r.stderr, tc.wantMsg) {
				t.Errorf("stderr %q: want one line containing %q", r.stderr, tc.wantMsg)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("files changed (-before +after):\n%s", diff)
			}
			var inspected inspectOutput
			if err := json.Unmarshal([]byte(ok(t, "inspect", "--output", "json", remote)), &inspected); err != nil || string(inspected.Digest) != remoteDigest {
				t.Errorf("%s moved to %s", remote, inspected.Digest)
			}
		})
	}
}

func TestHelpListsExitCodes(t *testing.T) {
	out := ok(t, "--help")
	for _, s := range []string{"EXIT CODES:", "2  usage error", "4  reference, tag, manifest, blob or platform not found", "build", "push", "pull", "copy", "inspect"} {
		if !strings.Contains(out, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

func TestHoistFlags(t *testing.T) {
	cases := map[string]struct{ in, want []string }{
		"flags first":      {in: []string{"x", "inspect", "--output", "json", "REF"}, want: []string{"x", "inspect", "--output", "json", "REF"}},
		"flags after":      {in: []string{"x", "inspect", "REF", "--output", "json"}, want: []string{"x", "inspect", "--output", "json", "REF"}},
		"bool and inline":  {in: []string{"x", "copy", "A", "--plain-http", "B", "--output=json"}, want: []string{"x", "copy", "--plain-http", "--output=json", "A", "B"}},
		"short with value": {in: []string{"x", "pull", "REF", "--dest", "dir"}, want: []string{"x", "pull", "--dest", "dir", "REF"}},
		"after --":         {in: []string{"x", "build", "--dest", "R", "--", "-weird.o"}, want: []string{"x", "build", "--dest", "R", "--", "-weird.o"}},
		"no command":       {in: []string{"x", "--help"}, want: []string{"x", "--help"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, cliutil.HoistFlags(newApp(io.Discard, io.Discard), tc.in)); diff != "" {
				t.Errorf("hoistFlags (-want +got):\n%s", diff)
			}
		})
	}
}

// snapshot maps every file under dir to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			files[path+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(path)
		files[path] = string(data)
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// TestRegistryConfig pushes to a registry that demands a password, with the
// credentials in a Docker config given by --registry-config.
func TestRegistryConfig(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.WithBasicAuth("ci", "s3cret"))
	home := t.TempDir()
	t.Setenv("HOME", home) // no credentials of the user running the tests
	t.Setenv("DOCKER_CONFIG", home)
	config := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(config, []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/private/xdp:v1"

	r := bpfctlImage(t, "build", "--dest", ref, object("xdp_counter"))
	if r.code != cliutil.ExitError || !strings.Contains(r.stderr, ref+": ") || !strings.Contains(r.stderr, "credential") {
		t.Errorf("build without credentials: exit %d, %q", r.code, r.stderr)
	}
	digest := strings.TrimSpace(ok(t, "build", "--registry-config", config, "--dest", ref, object("xdp_counter")))
	t.Setenv("BPFCTL_IMAGE_REGISTRY_CONFIG", config)
	if !strings.Contains(ok(t, "inspect", ref), digest) {
		t.Errorf("inspect with BPFCTL_IMAGE_REGISTRY_CONFIG does not show %s", digest)
	}
}

// TestInspectBpfmanImage inspects and pulls a bpfman bytecode image — a
// container image with io.ebpf.* labels and the object in a gzipped tar
// layer — pushed into a layout by the oras CLI.
func TestInspectBpfmanImage(t *testing.T) {
	dir := t.TempDir()
	xdp, err := os.ReadFile(object("xdp_counter"))
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "xdp_counter.bpf.o", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(xdp))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(xdp); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	config := `{"architecture":"amd64","os":"linux","config":{"Labels":{"io.ebpf.programs":"{\"xdp_counter\":\"xdp\"}","io.ebpf.maps":"{\"xdp_stats\":\"array\"}"}},"rootfs":{"type":"layers","diff_ids":[]}}`
	for name, data := range map[string][]byte{"config.json": []byte(config), "layer.tar.gz": layer.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(testutil.Tool(t, "oras"), "push", "--oci-layout", dir+"/image:v1", "--config", "config.json:application/vnd.oci.image.config.v1+json", "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}

	text := ok(t, "inspect", "oci:"+dir+"/image:v1")
	for _, s := range []string{"Format:         bpfman", `Label: io.ebpf.programs={"xdp_counter":"xdp"}`, "xdp_counter  xdp"} {
		if !strings.Contains(text, s) {
			t.Errorf("inspect lacks %q:\n%s", s, text)
		}
	}
	ok(t, "pull", "--dest", dir+"/out", "oci:"+dir+"/image:v1")
	if got, err := os.ReadFile(dir + "/out/xdp_counter.bpf.o"); err != nil || !bytes.Equal(got, xdp) {
		t.Errorf("pulled object: %v", err)
	}
}
