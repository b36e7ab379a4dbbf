package bpfdv1

import (
	"fmt"
	"sort"
	"strings"
)

// The enums' names as people type them: lower case without the enum's
// prefix, e.g. PROGRAM_TYPE_KRETPROBE is "kretprobe", XDP_ACTION_PASS is
// "pass", CGROUP_ATTACH_TYPE_INET_INGRESS is "inet_ingress". bpfctl and the
// Kubernetes API use these names; the UNSPECIFIED values have none.

// Name returns t's short name.
func (t ProgramType) Name() string { return shortName("PROGRAM_TYPE_", t.String()) }

// Name returns a's short name.
func (a XdpAction) Name() string { return shortName("XDP_ACTION_", a.String()) }

// Name returns a's short name.
func (a TcAction) Name() string { return shortName("TC_ACTION_", a.String()) }

// Name returns d's short name.
func (d Direction) Name() string { return shortName("DIRECTION_", d.String()) }

// Name returns m's short name.
func (m XdpMode) Name() string { return shortName("XDP_MODE_", m.String()) }

// Name returns t's short name.
func (t CgroupAttachType) Name() string { return shortName("CGROUP_ATTACH_TYPE_", t.String()) }

// ParseProgramType returns the program type with short name s.
func ParseProgramType(s string) (ProgramType, error) {
	v, err := parseShort("program type", "PROGRAM_TYPE_", ProgramType_value, s)
	return ProgramType(v), err
}

// ParseXdpAction returns the XDP action with short name s.
func ParseXdpAction(s string) (XdpAction, error) {
	v, err := parseShort("XDP action", "XDP_ACTION_", XdpAction_value, s)
	return XdpAction(v), err
}

// ParseTcAction returns the TC action with short name s.
func ParseTcAction(s string) (TcAction, error) {
	v, err := parseShort("TC action", "TC_ACTION_", TcAction_value, s)
	return TcAction(v), err
}

// ParseDirection returns the direction with short name s.
func ParseDirection(s string) (Direction, error) {
	v, err := parseShort("direction", "DIRECTION_", Direction_value, s)
	return Direction(v), err
}

// ParseXdpMode returns the XDP mode with short name s.
func ParseXdpMode(s string) (XdpMode, error) {
	v, err := parseShort("XDP mode", "XDP_MODE_", XdpMode_value, s)
	return XdpMode(v), err
}

// ParseCgroupAttachType returns the cgroup attach type with short name s.
func ParseCgroupAttachType(s string) (CgroupAttachType, error) {
	v, err := parseShort("cgroup attach type", "CGROUP_ATTACH_TYPE_", CgroupAttachType_value, s)
	return CgroupAttachType(v), err
}

// PullPolicyNames maps the pull policies' names, as configs spell them, to
// their values.
var PullPolicyNames = map[string]PullPolicy{
	"Always":       PullPolicy_PULL_POLICY_ALWAYS,
	"IfNotPresent": PullPolicy_PULL_POLICY_IF_NOT_PRESENT,
	"Never":        PullPolicy_PULL_POLICY_NEVER,
}

// ParsePullPolicy returns the pull policy named s (Always, IfNotPresent or
// Never); "" is PULL_POLICY_UNSPECIFIED, the daemon's default.
func ParsePullPolicy(s string) (PullPolicy, error) {
	if s == "" {
		return PullPolicy_PULL_POLICY_UNSPECIFIED, nil
	}
	if p, ok := PullPolicyNames[s]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown pull policy %q (want Always, IfNotPresent or Never)", s)
}

func shortName(prefix, full string) string {
	name := strings.ToLower(strings.TrimPrefix(full, prefix))
	if name == "unspecified" {
		return ""
	}
	return name
}

func parseShort(what, prefix string, values map[string]int32, s string) (int32, error) {
	full := prefix + strings.ToUpper(strings.TrimSpace(s))
	if v, ok := values[full]; ok && v != 0 && s != "" {
		return v, nil
	}
	var names []string
	for n, v := range values {
		if v != 0 {
			names = append(names, shortName(prefix, n))
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return values[prefix+strings.ToUpper(names[i])] < values[prefix+strings.ToUpper(names[j])]
	})
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", what, s, strings.Join(names, ", "))
}
