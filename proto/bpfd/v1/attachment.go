package bpfdv1

import (
	"fmt"
	"strings"
)

// Summary says in a few words where a link attaches, e.g. "tcx eth0
// ingress", "kprobe do_unlinkat", "cgroup /kubepods.slice CGroupInetEgress".
func (a *LinkAttachment) Summary() string {
	if a == nil {
		return ""
	}
	var parts []string
	add := func(format string, v any, ok bool) {
		if ok {
			parts = append(parts, fmt.Sprintf(format, v))
		}
	}
	add("%s", a.GetHook(), a.GetHook() != "")
	switch {
	case a.GetInterface() != "":
		add("%s", a.GetInterface(), true)
	case a.GetIfindex() != 0:
		add("ifindex %d", a.GetIfindex(), true)
	}
	add("%s", a.GetDirection(), a.GetDirection() != "")
	switch {
	case a.GetCgroup() != "":
		add("%s", a.GetCgroup(), true)
	case a.GetCgroupId() != 0:
		add("cgroup id %d", a.GetCgroupId(), true)
	}
	add("%s", a.GetTracepoint(), a.GetTracepoint() != "")
	add("prog %d", a.GetTargetProgramId(), a.GetTargetProgramId() != 0)
	add("%s", a.GetFile(), a.GetFile() != "")
	add("%s", a.GetFunction(), a.GetFunction() != "")
	add("+%#x", a.GetOffset(), a.GetOffset() != 0)
	add("pid %d", a.GetPid(), a.GetPid() != 0)
	add("%d functions", a.GetCount(), a.GetCount() != 0)
	add("netns %d", a.GetNetnsInode(), a.GetNetnsInode() != 0)
	add("config %#x", a.GetPerfEventConfig(), a.GetPerfEventConfig() != 0)
	add("%s", a.GetAttachType(), a.GetAttachType() != "" && a.GetDirection() == "")
	return strings.Join(parts, " ")
}
