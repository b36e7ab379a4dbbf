package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// requestFor runs a load command line and returns the request it builds.
func requestFor(t *testing.T, args ...string) (*bpfdv1.LoadRequest, error) {
	t.Helper()
	var req *bpfdv1.LoadRequest
	app := &cli.App{
		Name: "bpfctl",
		Commands: []*cli.Command{{Name: "load", Subcommands: []*cli.Command{{
			Name: "image", Flags: loadFlags, OnUsageError: cliutil.OnUsageError,
			Action: func(c *cli.Context) (err error) {
				req, err = loadRequest(c, c.Args().First())
				return err
			},
		}}}},
		Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(cliutil.HoistFlags(app, append([]string{"bpfctl", "load", "image"}, args...)))
	return req, err
}

func TestLoadRequest(t *testing.T) {
	xdp := func(a *bpfdv1.XdpAttach) *bpfdv1.AttachSpec {
		return &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Xdp{Xdp: a}}
	}
	cases := map[string]struct {
		args []string
		want *bpfdv1.LoadRequest
	}{
		"xdp with everything": {
			args: []string{"oci:/l@sha256:ab", "-p", "xdp_counter:xdp", "-i", "eth0", "--netns", "/run/netns/x", "--xdp-mode", "generic",
				"--priority", "50", "--proceed-on", "pass,drop", "-g", "verdict=01000000", "-m", "app=fw", "-m", "owner=net", "--pull-policy", "Never", "--map-owner-id", "7"},
			want: &bpfdv1.LoadRequest{
				Bytecode:   &bpfdv1.Bytecode{Reference: "oci:/l@sha256:ab", PullPolicy: bpfdv1.PullPolicy_PULL_POLICY_NEVER},
				GlobalData: map[string][]byte{"verdict": {1, 0, 0, 0}},
				Metadata:   map[string]string{"app": "fw", "owner": "net"},
				MapOwnerId: 7,
				Programs: []*bpfdv1.LoadProgram{{Name: "xdp_counter", Type: bpfdv1.ProgramType_PROGRAM_TYPE_XDP, Attach: xdp(&bpfdv1.XdpAttach{
					Interface: "eth0", Netns: "/run/netns/x", Mode: bpfdv1.XdpMode_XDP_MODE_GENERIC, Priority: 50,
					ProceedOn: []bpfdv1.XdpAction{bpfdv1.XdpAction_XDP_ACTION_PASS, bpfdv1.XdpAction_XDP_ACTION_DROP}})}},
			},
		},
		"uprobe and uretprobe share flags": {
			args: []string{"r", "-p", "u:uprobe", "-p", "ur:uretprobe", "--target", "/bin/sh", "--function", "main", "--pid", "9"},
			want: &bpfdv1.LoadRequest{
				Bytecode: &bpfdv1.Bytecode{Reference: "r"}, GlobalData: map[string][]byte{}, Metadata: map[string]string{},
				Programs: []*bpfdv1.LoadProgram{
					{Name: "u", Type: bpfdv1.ProgramType_PROGRAM_TYPE_UPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{Target: "/bin/sh", Function: "main", Pid: 9}}}},
					{Name: "ur", Type: bpfdv1.ProgramType_PROGRAM_TYPE_URETPROBE, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Uprobe{Uprobe: &bpfdv1.UprobeAttach{Target: "/bin/sh", Function: "main", Pid: 9}}}},
				},
			},
		},
		"owner and map readers": {
			args: []string{"r", "-p", "t:tracepoint", "--owner-config", "xdp-counter", "--owner-namespace", "apps", "--map-reader", "apps", "--map-reader", "monitoring"},
			want: &bpfdv1.LoadRequest{
				Bytecode: &bpfdv1.Bytecode{Reference: "r"}, GlobalData: map[string][]byte{}, Metadata: map[string]string{},
				Owner:    &bpfdv1.Owner{Config: "xdp-counter", Namespace: "apps", MapReaderNamespaces: []string{"apps", "monitoring"}},
				Programs: []*bpfdv1.LoadProgram{{Name: "t", Type: bpfdv1.ProgramType_PROGRAM_TYPE_TRACEPOINT, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Tracepoint{Tracepoint: &bpfdv1.TracepointAttach{}}}}},
			},
		},
		"cgroup": {
			args: []string{"r", "-p", "c:cgroup", "--cgroup", "/sys/fs/cgroup/x", "--cgroup-attach-type", "inet_egress"},
			want: &bpfdv1.LoadRequest{
				Bytecode: &bpfdv1.Bytecode{Reference: "r"}, GlobalData: map[string][]byte{}, Metadata: map[string]string{},
				Programs: []*bpfdv1.LoadProgram{{Name: "c", Type: bpfdv1.ProgramType_PROGRAM_TYPE_CGROUP, Attach: &bpfdv1.AttachSpec{Spec: &bpfdv1.AttachSpec_Cgroup{Cgroup: &bpfdv1.CgroupAttach{
					Path: "/sys/fs/cgroup/x", AttachType: bpfdv1.CgroupAttachType_CGROUP_ATTACH_TYPE_INET_EGRESS}}}}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := requestFor(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRequestRejects(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"no program":            {args: []string{"r", "-i", "eth0"}, want: "--program"},
		"program without type":  {args: []string{"r", "-p", "xdp_counter"}, want: "want NAME:TYPE"},
		"unknown type":          {args: []string{"r", "-p", "x:socket"}, want: `unknown program type "socket"`},
		"flag for other type":   {args: []string{"r", "-p", "x:xdp", "--tracepoint", "a/b"}, want: "--tracepoint does not apply to xdp programs"},
		"bad proceed-on":        {args: []string{"r", "-p", "x:xdp", "--proceed-on", "pass,maybe"}, want: `unknown XDP action "maybe"`},
		"tc action for xdp":     {args: []string{"r", "-p", "x:xdp", "--proceed-on", "shot"}, want: `unknown XDP action "shot"`},
		"bad global":            {args: []string{"r", "-p", "x:xdp", "-g", "verdict=zz"}, want: "not hex bytes"},
		"global without =":      {args: []string{"r", "-p", "x:xdp", "-g", "verdict"}, want: "want NAME=HEX"},
		"bad metadata":          {args: []string{"r", "-p", "x:xdp", "-m", "app"}, want: "want KEY=VALUE"},
		"bad pull policy":       {args: []string{"r", "-p", "x:xdp", "--pull-policy", "Sometimes"}, want: "unknown pull policy"},
		"bad direction":         {args: []string{"r", "-p", "x:tc", "--direction", "sideways"}, want: `unknown direction "sideways"`},
		"bad xdp mode":          {args: []string{"r", "-p", "x:xdp", "--xdp-mode", "turbo"}, want: `unknown XDP mode "turbo"`},
		"map reader, no config": {args: []string{"r", "-p", "x:xdp", "--map-reader", "apps"}, want: "--map-reader needs --owner-config"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := requestFor(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
			if code := exitCode(err); code != cliutil.ExitUsage {
				t.Errorf("exit code %d, want %d", code, cliutil.ExitUsage)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	cases := map[string]struct {
		err  error
		want int
	}{
		"usage":       {cliutil.Usagef("bad"), cliutil.ExitUsage},
		"invalid":     {requestFailed("load", "/s", status.Error(codes.InvalidArgument, "priority 0")), cliutil.ExitUsage},
		"denied":      {requestFailed("load", "/s", status.Error(codes.PermissionDenied, "unsigned")), cliutil.ExitDenied},
		"not found":   {requestFailed("get 9", "/s", status.Error(codes.NotFound, "program 9: not found")), cliutil.ExitNotFound},
		"conflict":    {requestFailed("load", "/s", status.Error(codes.AlreadyExists, "hook taken")), cliutil.ExitError},
		"plain error": {errors.New("x"), cliutil.ExitError},
		"no daemon":   {requestFailed("list", "/s", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix /s: connect: no such file or directory"`)), cliutil.ExitError},
	}
	for name, tc := range cases {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode = %d, want %d", name, got, tc.want)
		}
	}
}

func TestUnreachableDaemon(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bpfctl", "--socket", socket, "list"}, &stdout, &stderr)
	if code != cliutil.ExitError {
		t.Errorf("exit code %d, want %d", code, cliutil.ExitError)
	}
	want := "bpfctl: list: cannot reach bpfd at " + socket + " (is it running?): no such file or directory\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// TestUnknownCommandAndVersion checks that an unknown command is a usage
// error (exit 2) and that version prints without a daemon.
func TestUnknownCommandAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bpfctl", "nope"}, &stdout, &stderr); code != cliutil.ExitUsage || !strings.Contains(stderr.String(), `unknown command "nope"`) {
		t.Errorf("bpfctl nope: exit %d, %q", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"bpfctl", "version", "-o", "json"}, &stdout, &stderr); code != cliutil.ExitOK || !strings.Contains(stdout.String(), `"apiVersion": "bpfctl.bpfd.io/v1"`) || !strings.Contains(stdout.String(), `"commit"`) {
		t.Errorf("bpfctl version -o json: exit %d, %s", code, stdout.String())
	}
}

// TestCompletion prints bpfctl's completion scripts; bash's completes
// through the program itself.
func TestCompletion(t *testing.T) {
	// urfave/cli reads os.Args when it completes: make them bpfctl's.
	args := os.Args
	os.Args = []string{"bpfctl", "--generate-bash-completion"}
	defer func() { os.Args = args }()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bpfctl", "--generate-bash-completion"}, &stdout, &stderr); code != cliutil.ExitOK || !strings.Contains(stdout.String(), "load") || !strings.Contains(stdout.String(), "version") {
		t.Errorf("--generate-bash-completion: exit %d, %q", code, stdout.String())
	}
	for shell, want := range map[string]string{"bash": "complete -o bashdefault -o default -F _bpfctl_complete bpfctl", "zsh": "#compdef bpfctl", "fish": "complete -c bpfctl"} {
		stdout.Reset()
		if code := run(context.Background(), []string{"bpfctl", "completion", shell}, &stdout, &stderr); code != cliutil.ExitOK || !strings.Contains(stdout.String(), want) {
			t.Errorf("completion %s: exit %d, %q lacks %q", shell, code, stdout.String(), want)
		}
	}
}
