package podproc_test

import (
	"testing"

	"github.com/bpfd-dev/bpfd/pkg/podproc"
)

func TestNetnsPID(t *testing.T) {
	const host, pod = 4026531840, 4026532999
	cases := map[string]struct {
		procs   []podproc.Process
		wantPID int
		wantOK  bool
	}{
		"own namespace": {
			procs:   []podproc.Process{{PID: 5, ContainerID: cid1, Netns: pod}, {PID: 9, ContainerID: cid2, Netns: pod}},
			wantPID: 5, wantOK: true,
		},
		"hostNetwork": {
			procs: []podproc.Process{{PID: 5, ContainerID: cid1, Netns: host}, {PID: 9, ContainerID: cid2, Netns: host}},
		},
		"CRI-O's monitor is in the node's namespace, and in no container": {
			procs:   []podproc.Process{{PID: 3, Netns: host}, {PID: 5, ContainerID: cid1, Netns: pod}},
			wantPID: 5, wantOK: true,
		},
		"a process that left for the node's namespace is passed over": {
			procs:   []podproc.Process{{PID: 3, ContainerID: cid1, Netns: host}, {PID: 5, ContainerID: cid2, Netns: pod}},
			wantPID: 5, wantOK: true,
		},
		"unreadable ones are passed over": {
			procs:   []podproc.Process{{PID: 3, ContainerID: cid1}, {PID: 5, ContainerID: cid2, Netns: pod}},
			wantPID: 5, wantOK: true,
		},
		"the only one read is the node's": {
			procs: []podproc.Process{{PID: 3, ContainerID: cid1}, {PID: 5, ContainerID: cid2, Netns: host}},
		},
		"none read: the lowest container pid, unchecked": {
			procs:   []podproc.Process{{PID: 2}, {PID: 3, ContainerID: cid1}, {PID: 5, ContainerID: cid2}},
			wantPID: 3, wantOK: true,
		},
		"only CRI-O's monitor": {
			procs: []podproc.Process{{PID: 2}},
		},
		"only CRI-O's monitor, in a namespace of its own": {
			procs: []podproc.Process{{PID: 2, Netns: pod}},
		},
		"no process": {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pid, ok := podproc.Pod{UID: uidA, Processes: tc.procs}.NetnsPID(host)
			if pid != tc.wantPID || ok != tc.wantOK {
				t.Errorf("NetnsPID = %d, %v; want %d, %v", pid, ok, tc.wantPID, tc.wantOK)
			}
		})
	}
}

func TestContainerPID(t *testing.T) {
	p := podproc.Pod{UID: uidA, Processes: []podproc.Process{
		{PID: 2}, {PID: 4, ContainerID: cid2}, {PID: 6, ContainerID: cid1}, {PID: 8, ContainerID: cid1},
	}}
	cases := map[string]struct {
		id      string
		wantPID int
		wantOK  bool
	}{
		"bare id":             {id: cid1, wantPID: 6, wantOK: true},
		"containerd status":   {id: "containerd://" + cid1, wantPID: 6, wantOK: true},
		"cri-o status":        {id: "cri-o://" + cid2, wantPID: 4, wantOK: true},
		"docker status":       {id: "docker://" + cid2, wantPID: 4, wantOK: true},
		"another container":   {id: cid3},
		"empty":               {},
		"runtime alone":       {id: "containerd://"},
		"prefix of an id":     {id: cid1[:12]},
		"not CRI-O's monitor": {id: "://"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pid, ok := p.ContainerPID(tc.id)
			if pid != tc.wantPID || ok != tc.wantOK {
				t.Errorf("ContainerPID(%q) = %d, %v; want %d, %v", tc.id, pid, ok, tc.wantPID, tc.wantOK)
			}
		})
	}
}
