package inventory

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMountinfo(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    []mount
		wantErr bool
	}{
		"bpffs and cgroup2": {
			in: "25 30 0:23 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:9 - bpf bpf rw,mode=700\n" +
				"26 30 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw\n",
			want: []mount{{dev: "0:23", root: "/", point: "/sys/fs/bpf", fstype: "bpf"}, {dev: "0:24", root: "/", point: "/sys/fs/cgroup", fstype: "cgroup2"}},
		},
		"no optional fields": {
			in:   "25 30 0:23 / /run/bpfd/fs rw - bpf bpf rw\n",
			want: []mount{{dev: "0:23", root: "/", point: "/run/bpfd/fs", fstype: "bpf"}},
		},
		"several optional fields": {
			in:   "25 30 0:23 / /x rw shared:1 master:2 propagate_from:3 - bpf none rw",
			want: []mount{{dev: "0:23", root: "/", point: "/x", fstype: "bpf"}},
		},
		"escaped space, tab, newline and backslash": {
			in:   `25 30 0:23 /a\134b /my\040bpf\011fs\012x rw - bpf bpf rw`,
			want: []mount{{dev: "0:23", root: `/a\b`, point: "/my bpf\tfs\nx", fstype: "bpf"}},
		},
		"a backslash not followed by three octal digits stays": {
			in:   `25 30 0:23 / /x\9 rw - bpf bpf rw`,
			want: []mount{{dev: "0:23", root: "/", point: `/x\9`, fstype: "bpf"}},
		},
		"no separator":                {in: "25 30 0:23 / /x rw shared:1 bpf bpf rw", wantErr: true},
		"nothing after the separator": {in: "25 30 0:23 / /x rw -", wantErr: true},
		"too short":                   {in: "25 30 0:23 /", wantErr: true},
		"empty":                       {in: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := parseMountinfo(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseMountinfo: error %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(mount{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestChooseCgroup(t *testing.T) {
	const pod = "/kubepods/burstable/pod0f5b2c1e-1234-4abc-8def-0123456789ab/4e3a9c1b2d0f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
	cases := map[string]struct{ in, want string }{
		"cgroup v2 only":            {in: "0::/system.slice/bpfd.service\n", want: "/system.slice/bpfd.service"},
		"v1 controllers name a pod": {in: "12:memory:" + pod + "\n11:cpu,cpuacct:" + pod + "\n0::/\n", want: pod},
		"hybrid without a pod":      {in: "12:memory:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n0::/user.slice/session-1.scope\n", want: "/user.slice/session-1.scope"},
		"v1 only":                   {in: "12:memory:/a\n11:pids:/b\n", want: "/a"},
		"empty":                     {in: "", want: ""},
		"garbage":                   {in: "nonsense\n", want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := chooseCgroup(tc.in); got != tc.want {
				t.Errorf("chooseCgroup = %q, want %q", got, tc.want)
			}
		})
	}
}
