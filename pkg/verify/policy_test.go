package verify

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

func TestParsePolicy(t *testing.T) {
	k0, k1 := key(t, 0), key(t, 1)
	ca := newTestCA(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "net.pub"), k0.pub.PEM())
	writeFile(t, filepath.Join(dir, "root.json"), mustRead(t, ca.trustedRoot))
	policy := `apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
default: allow-unsigned
rules:
- name: net
  images: ["registry.example.com/net/*", "oci:/var/lib/bpfd/net/**"]
  authorities:
  - key: {path: net.pub}
  - key:
      pem: |
` + indent(string(k1.pub.PEM()), "        ") + `
  - keyless:
      trustedRoot: root.json
      issuer: https://issuer.example.com
      subjectRegExp: '^.*@example\.com$'
  threshold: 2
  allow:
    programTypes: [xdp, TC]
- name: observability
  images: ["registry.example.com/obs/**"]
  mode: warn
  authorities:
  - key: {path: net.pub}
  allow: {programTypes: [tracepoint, raw_tracepoint, tp_btf]}
- name: local
  images: ["file:/opt/bpf/**"]
  allowUnsigned: true
`
	pol, err := ParsePolicy([]byte(policy), ParseOptions{Source: "p.yaml", BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	type ruleSummary struct {
		Name          string
		Images        []string
		Authorities   []string
		Threshold     int
		Mode          Mode
		AllowUnsigned bool
		ProgramTypes  []progtype.Kind
	}
	var got []ruleSummary
	for _, r := range pol.Rules {
		s := ruleSummary{Name: r.Name, Images: r.Images, Threshold: r.Threshold, Mode: r.Mode, AllowUnsigned: r.AllowUnsigned, ProgramTypes: r.ProgramTypes}
		for _, a := range r.Authorities {
			s.Authorities = append(s.Authorities, a.String())
		}
		got = append(got, s)
	}
	root := filepath.Join(dir, "root.json")
	want := []ruleSummary{
		{
			Name:   "net",
			Images: []string{"registry.example.com/net/*", "oci:/var/lib/bpfd/net/**"},
			Authorities: []string{
				"key " + k0.pub.Fingerprint() + " (" + filepath.Join(dir, "net.pub") + ")",
				"key " + k1.pub.Fingerprint() + " (inline)",
				"keyless subject ~^.*@example\\.com$ issuer https://issuer.example.com (" + root + ")",
			},
			Threshold: 2, Mode: ModeEnforce, ProgramTypes: []progtype.Kind{progtype.XDP, progtype.TC},
		},
		{Name: "observability", Images: []string{"registry.example.com/obs/**"}, Authorities: []string{"key " + k0.pub.Fingerprint() + " (" + filepath.Join(dir, "net.pub") + ")"}, Threshold: 1, Mode: ModeWarn,
			ProgramTypes: []progtype.Kind{progtype.Tracepoint, progtype.RawTracepoint, progtype.TPBTF}},
		{Name: "local", Images: []string{"file:/opt/bpf/**"}, Mode: ModeEnforce, AllowUnsigned: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if pol.Default != DefaultAllowUnsigned {
		t.Errorf("default %q, want %q", pol.Default, DefaultAllowUnsigned)
	}
	for name, wantRule := range map[string]string{
		"registry.example.com/net/xdp":        "net",
		"registry.example.com/net/a/b":        "",
		"registry.example.com/obs/a/b":        "observability",
		"oci:/var/lib/bpfd/net/x/y":           "net",
		"file:/opt/bpf/x.bpf.o":               "local",
		"file:/tmp/x.bpf.o":                   "",
		"registry.example.com/network/xdp":    "",
		"registry.example.com/net/xdp-extras": "net",
	} {
		got := ""
		if r := pol.match(name); r != nil {
			got = r.Name
		}
		if got != wantRule {
			t.Errorf("match(%q) = %q, want %q", name, got, wantRule)
		}
	}
}

// TestParsePolicyErrors checks that each kind of mistake is reported with its
// line and field, and that all of them are reported at once.
func TestParsePolicyErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.pub"), key(t, 0).pub.PEM())
	writeFile(t, filepath.Join(dir, "cert.pem"), newTestCA(t).issue(t, "a@example.com", "https://issuer", time.Now()).certPEM)
	writeFile(t, filepath.Join(dir, "garbage.pub"), []byte("not a key\n"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.pub"), 0o600); err != nil {
		t.Fatal(err)
	}
	const head = "apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\n"
	const rule = "rules:\n- name: r\n  images: [\"x/*\"]\n"

	type problem struct {
		Line    int
		Field   string
		Message string // a substring of the message
	}
	cases := map[string]struct {
		policy string
		want   []problem
	}{
		"yaml syntax": {
			policy: head + "rules: [\n",
			want:   []problem{{0, "", "did not find expected node content"}},
		},
		"empty": {
			policy: "",
			want:   []problem{{0, "", "empty policy"}},
		},
		"wrong version and kind": {
			policy: "apiVersion: bpfd.io/v2\nkind: Policy\n" + rule + "  authorities: [{key: {path: good.pub}}]\n",
			want:   []problem{{1, "apiVersion", `unsupported version "bpfd.io/v2"`}, {2, "kind", `kind "Policy"`}},
		},
		"missing version": {
			policy: "kind: TrustPolicy\nrules: []\n",
			want:   []problem{{1, "apiVersion", "missing"}},
		},
		"unknown keys": {
			policy: head + "defualt: deny\n" + rule + "  authorities: [{key: {path: good.pub, sha: x}}]\n  tresholds: 1\n",
			want: []problem{
				{3, "defualt", "unknown field (want one of apiVersion, default, kind, rules)"},
				{7, "rules[0].authorities[0].key.sha", "unknown field (want one of path, pem)"},
				{8, "rules[0].tresholds", "unknown field"},
			},
		},
		"bad glob": {
			policy: head + "rules:\n- name: r\n  images: [\"registry.example.com/[net\", \"ok/*\", \"\\\\\"]\n  authorities: [{key: {path: good.pub}}]\n",
			want: []problem{
				{5, "rules[0].images[0]", "bad image pattern \"registry.example.com/[net\": unterminated character class"},
				{5, "rules[0].images[2]", "trailing backslash"},
			},
		},
		"unreadable key file": {
			policy: head + rule + "  authorities: [{key: {path: missing.pub}}]\n",
			want:   []problem{{6, "rules[0].authorities[0].key.path", "unreadable key file: open " + filepath.Join(dir, "missing.pub") + ": no such file or directory"}},
		},
		"key file is a FIFO": {
			policy: head + rule + "  authorities: [{key: {path: fifo.pub}}]\n",
			want:   []problem{{6, "rules[0].authorities[0].key.path", "unreadable key file: read " + filepath.Join(dir, "fifo.pub") + ": not a regular file"}},
		},
		"key file is not a key": {
			policy: head + rule + "  authorities:\n  - key: {path: garbage.pub}\n  - key: {path: cert.pem}\n  - key: {pem: hello}\n",
			want: []problem{
				{7, "rules[0].authorities[0].key.path", "no PEM block: invalid key"},
				{8, "rules[0].authorities[1].key.path", `PEM block "CERTIFICATE" is not a public key: invalid key`},
				{9, "rules[0].authorities[2].key.pem", "no PEM block: invalid key"},
			},
		},
		"empty authorities": {
			policy: head + rule + "  authorities: []\n",
			want:   []problem{{6, "rules[0].authorities", "empty: list at least one key or keyless authority, or set allowUnsigned: true"}},
		},
		"no authorities": {
			policy: head + rule,
			want:   []problem{{4, "rules[0].authorities", "empty"}},
		},
		"regexp does not compile": {
			policy: head + rule + "  authorities:\n  - keyless:\n      trustedRoot: root.json\n      issuerRegExp: '(unclosed'\n      subjectRegExp: '*'\n",
			want: []problem{
				{8, "rules[0].authorities[0].keyless.trustedRoot", "trusted root " + filepath.Join(dir, "root.json")},
				{9, "rules[0].authorities[0].keyless.issuerRegExp", "regular expression does not compile: error parsing regexp: missing closing )"},
				{10, "rules[0].authorities[0].keyless.subjectRegExp", "regular expression does not compile: error parsing regexp: missing argument to repetition operator"},
			},
		},
		"keyless identity": {
			policy: head + rule + "  authorities:\n  - keyless: {issuer: a, issuerRegExp: b}\n",
			want: []problem{
				{7, "rules[0].authorities[0].keyless.trustedRoot", "missing"},
				{7, "rules[0].authorities[0].keyless", "want exactly one of issuer and issuerRegExp"},
				{7, "rules[0].authorities[0].keyless", "want exactly one of subject and subjectRegExp"},
			},
		},
		"authority kinds": {
			policy: head + rule + "  authorities:\n  - {}\n  - key: {path: good.pub}\n    keyless: {}\n",
			want: []problem{
				{7, "rules[0].authorities[0]", "want exactly one of key and keyless"},
				{9, "rules[0].authorities[1].keyless.trustedRoot", "missing"},
				{9, "rules[0].authorities[1].keyless", "want exactly one of issuer and issuerRegExp"},
				{9, "rules[0].authorities[1].keyless", "want exactly one of subject and subjectRegExp"},
				{8, "rules[0].authorities[1]", "want exactly one of key and keyless"},
			},
		},
		"bad values": {
			policy: head + "default: allow\n" + rule + "  mode: audit\n  threshold: 2\n  authorities: [{key: {path: good.pub}}]\n  allow: {programTypes: [xdp, socket]}\n",
			want: []problem{
				{3, "default", `"allow": want deny or allow-unsigned`},
				{7, "rules[0].mode", `"audit": want enforce or warn`},
				{10, "rules[0].allow.programTypes[1]", `unknown program type "socket"`},
				{8, "rules[0].threshold", "2: want between 1 and the number of authorities (1)"},
			},
		},
		"wrong types": {
			policy: head + "rules:\n- name: [r]\n  images: x/*\n  threshold: one\n  allowUnsigned: yes please\n",
			want: []problem{
				{4, "rules[0].name", "want a string, not a list"},
				{5, "rules[0].images", "want a list, not \"x/*\""},
				{6, "rules[0].threshold", "want a whole number, not \"one\""},
				{7, "rules[0].allowUnsigned", "want true or false, not \"yes please\""},
				{4, "rules[0].authorities", "empty"},
			},
		},
		"threshold not a number": {
			policy: head + rule + "  threshold: two\n  authorities: [{key: {path: good.pub}}]\n",
			want:   []problem{{6, "rules[0].threshold", `want a whole number, not "two"`}},
		},
		"allowUnsigned with authorities": {
			policy: head + rule + "  allowUnsigned: true\n  authorities: [{key: {path: good.pub}}]\n",
			want:   []problem{{7, "rules[0].authorities", "a rule with allowUnsigned takes no authorities"}},
		},
		"rule names": {
			policy: head + "rules:\n- images: [a]\n  allowUnsigned: true\n- name: b\n  images: [b]\n  allowUnsigned: true\n- name: b\n  images: []\n  allowUnsigned: true\n",
			want: []problem{
				{4, "rules[0].name", "missing"},
				{10, "rules[2].images", "empty"},
				{9, "rules[2].name", `"b" is also the name of rules[1]`},
			},
		},
		"empty program types": {
			policy: head + rule + "  authorities: [{key: {path: good.pub}}]\n  allow: {programTypes: []}\n",
			want:   []problem{{7, "rules[0].allow.programTypes", "empty: list the program types the images may load, or leave out allow to allow any"}},
		},
		"empty allow": {
			policy: head + rule + "  authorities: [{key: {path: good.pub}}]\n  allow: {}\n",
			want:   []problem{{7, "rules[0].allow", "empty: list programTypes, or leave out allow to allow any program type"}},
		},
		"control character in a pattern": {
			policy: head + "rules:\n- name: r\n  images: [\"a/*\\nb\"]\n  authorities: [{key: {path: good.pub}}]\n",
			want:   []problem{{5, "rules[0].images[0]", "contains control characters"}},
		},
		"attestation requirements": {
			policy: head + rule + "  authorities: [{key: {path: good.pub}}]\n  require:\n    attestations:\n    - predicateType: spdx\n      authorities: [{key: {path: good.pub}}]\n      conditions: {builderId: x}\n    - predicateType: not a type\n      authorities: []\n    - authorities: [{key: {path: good.pub}}]\n      threshold: 2\n      conditions: {}\n",
			want: []problem{
				{11, "rules[0].require.attestations[0].conditions", "conditions read SLSA provenance; predicate type https://spdx.dev/Document has none"},
				{12, "rules[0].require.attestations[1].predicateType", `predicate type "not a type": want cyclonedx, link, openvex, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, vuln, or an absolute URI`},
				{13, "rules[0].require.attestations[1].authorities", "empty: list the keys or keyless identities that must sign the attestation"},
				{16, "rules[0].require.attestations[2].conditions", "empty: give builderId, buildType or sourceRepository"},
				{14, "rules[0].require.attestations[2].predicateType", "missing"},
				{15, "rules[0].require.attestations[2].threshold", "2: want between 1 and the number of authorities (1)"},
			},
		},
		"attestations required of unsigned images": {
			policy: head + rule + "  allowUnsigned: true\n  require: {attestations: [{predicateType: spdx, authorities: [{key: {path: good.pub}}]}]}\n",
			want:   []problem{{7, "rules[0].require", "a rule with allowUnsigned requires no attestations"}},
		},
		"repeated key": {
			policy: head + rule + "  authorities: [{key: {path: good.pub}}]\n  mode: warn\n  mode: enforce\n",
			want:   []problem{{8, "rules[0].mode", "repeated"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.policy), ParseOptions{Source: "p.yaml", BaseDir: dir})
			var perr *PolicyError
			if !errors.As(err, &perr) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParsePolicy error = %v, want a *PolicyError", err)
			}
			// Problems come in line order.
			slices.SortStableFunc(tc.want, func(a, b problem) int { return a.Line - b.Line })
			var got []problem
			for i, p := range perr.Problems {
				g := problem{p.Line, p.Field, p.Message}
				if i < len(tc.want) && strings.Contains(p.Message, tc.want[i].Message) {
					g.Message = tc.want[i].Message
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nerror:\n%v", diff, err)
			}
		})
	}
}

func TestPolicyErrorMessage(t *testing.T) {
	_, err := ParsePolicy([]byte("kind: TrustPolicy\nrules: x\n"), ParseOptions{Source: "/etc/bpfd/policy.yaml"})
	want := `invalid trust policy /etc/bpfd/policy.yaml: 2 problems:
  /etc/bpfd/policy.yaml:1: apiVersion: missing
  /etc/bpfd/policy.yaml:2: rules: want a list, not "x"`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = ParsePolicy([]byte("kind: TrustPolicy\nrules: []\n"), ParseOptions{Source: "p.yaml"})
	if want := "invalid trust policy: p.yaml:1: apiVersion: missing"; err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestPolicyFingerprint checks that the fingerprint follows what the policy
// means, not how it is written.
func TestPolicyFingerprint(t *testing.T) {
	dir := t.TempDir()
	k0, k1 := key(t, 0), key(t, 1)
	writeFile(t, filepath.Join(dir, "a.pub"), k0.pub.PEM())
	writeFile(t, filepath.Join(dir, "b.pub"), k1.pub.PEM())
	base := "apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: r\n  images: [a/*, b/*]\n  authorities: [{key: {path: a.pub}}]\n  allow: {programTypes: [xdp, tc]}\n"
	fingerprint := func(policy string) string {
		t.Helper()
		p, err := ParsePolicy([]byte(policy), ParseOptions{BaseDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return p.Fingerprint()
	}
	want := fingerprint(base)
	if !strings.HasPrefix(want, "sha256:") || len(want) != len("sha256:")+64 {
		t.Fatalf("fingerprint %q is not sha256:<hex>", want)
	}
	same := map[string]string{
		"comments and layout":  "# trust\napiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n  - name: r   # the rule\n    images:\n      - b/*\n      - a/*\n    authorities:\n      - key:\n          path: a.pub\n    allow:\n      programTypes: [tc, xdp]\n",
		"defaults spelled out": base + "  mode: enforce\n  threshold: 1\ndefault: deny\n",
		"inline key":           strings.Replace(base, "{path: a.pub}", "{pem: \""+strings.ReplaceAll(string(k0.pub.PEM()), "\n", "\\n")+"\"}", 1),
	}
	for name, policy := range same {
		if got := fingerprint(policy); got != want {
			t.Errorf("%s: fingerprint %s, want %s", name, got, want)
		}
	}
	different := map[string]string{
		"other key":   strings.Replace(base, "a.pub", "b.pub", 1),
		"warn mode":   base + "  mode: warn\n",
		"other type":  strings.Replace(base, "tc]", "tracepoint]", 1),
		"default":     base + "default: allow-unsigned\n",
		"requirement": base + "  require: {attestations: [{predicateType: slsaprovenance, authorities: [{key: {path: a.pub}}]}]}\n",
	}
	for name, policy := range different {
		if got := fingerprint(policy); got == want {
			t.Errorf("%s: fingerprint did not change", name)
		}
	}
	// Rotating the key file changes the fingerprint of the same text.
	writeFile(t, filepath.Join(dir, "a.pub"), k1.pub.PEM())
	if got := fingerprint(base); got == want {
		t.Error("rotating the key file did not change the fingerprint")
	}
}

func TestLoadPolicyMissing(t *testing.T) {
	_, err := LoadPolicy(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPolicy error = %v, want not exist", err)
	}
}

func TestCompileGlob(t *testing.T) {
	cases := map[string]struct {
		pattern string
		match   []string
		nomatch []string
	}{
		"star in segment": {"registry.example.com/net/*", []string{"registry.example.com/net/xdp"}, []string{"registry.example.com/net/a/b", "registry.example.com/net", "registry.example.com/network/x"}},
		"double star":     {"registry.example.com/**", []string{"registry.example.com/a", "registry.example.com/a/b/c"}, []string{"registry.example.com", "other.example.com/a"}},
		"question":        {"r/x?", []string{"r/x1"}, []string{"r/x", "r/x/", "r/x12"}},
		"class":           {"r/[a-c]x", []string{"r/bx"}, []string{"r/dx"}},
		"negated class":   {"r/[!a-c]x", []string{"r/dx"}, []string{"r/ax"}},
		"literal dots":    {"a.b/c", []string{"a.b/c"}, []string{"axb/c"}},
		"escape":          {`r/\*`, []string{"r/*"}, []string{"r/x"}},
		"port":            {"127.0.0.1:5000/*", []string{"127.0.0.1:5000/xdp"}, []string{"127.0.0.1:5001/xdp"}},
		"layout":          {"oci:/var/lib/**", []string{"oci:/var/lib/a/b"}, []string{"oci-archive:/var/lib/a"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			re, err := compileGlob(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.match {
				if !re.MatchString(s) {
					t.Errorf("%q does not match %q", tc.pattern, s)
				}
			}
			for _, s := range tc.nomatch {
				if re.MatchString(s) {
					t.Errorf("%q matches %q", tc.pattern, s)
				}
			}
		})
	}
	// Newlines and other control characters: no wildcard or class matches
	// one, so `**` and `*` agree, and a name holding one matches nothing.
	for _, pattern := range []string{"r/**", "r/*", "r/?x", "r/[!a]x", "r/*x", "**"} {
		re, err := compileGlob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"r/\nx", "r/a\nx", "r/\x7fx", "r/\u0085x", "r/\tx"} {
			if re.MatchString(name) || matchName(re, name) {
				t.Errorf("%q matches %q", pattern, name)
			}
		}
	}
	if matchName(anyImage, "r/\nx") || !matchName(anyImage, "r/x") {
		t.Error("the pattern ** of a key policy disagrees with a compiled **")
	}
	for _, bad := range []string{"", "[abc", `a\`, "a/[!", "a\n*", "a\x00"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) accepted a bad pattern", bad)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// TestPolicyCovers checks which names a policy may admit at all: those a
// rule governs, and OCI references no rule covers under default
// allow-unsigned, never local files no rule covers.
func TestPolicyCovers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.pub"), key(t, 0).pub.PEM())
	rules := "rules:\n- name: r\n  images: [\"registry.example.com/net/*\", \"file:/opt/bpf/**\"]\n  authorities: [{key: {path: a.pub}}]\n"
	cases := map[string]struct {
		def  string
		name string
		want bool
	}{
		"rule":                         {"deny", "registry.example.com/net/xdp", true},
		"no rule":                      {"deny", "registry.example.com/other/xdp", false},
		"no rule, allow-unsigned":      {"allow-unsigned", "registry.example.com/other/xdp", true},
		"layout no rule":               {"deny", "oci:/tmp/x", false},
		"local file rule":              {"deny", "file:/opt/bpf/x.o", true},
		"local file no rule":           {"deny", "file:/tmp/x.o", false},
		"local file no rule, unsigned": {"allow-unsigned", "file:/tmp/x.o", false},
		"segment wildcard":             {"deny", "registry.example.com/net/a/b", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy([]byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\ndefault: "+tc.def+"\n"+rules), ParseOptions{BaseDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Covers(tc.name); got != tc.want {
				t.Errorf("Covers(%q) = %v, want %v", tc.name, got, tc.want)
			}
			// Covers agrees with the verdict on a name with nothing to show.
			_, verr := NewVerifier(p, VerifierOptions{}).VerifyEvidence(Subject{Name: tc.name}, nil, nil)
			var denial *DenialError
			if !tc.want && (!errors.As(verr, &denial) || denial.Reason != ReasonOutOfScope) {
				t.Errorf("VerifyEvidence of an uncovered name: %v, want an out-of-scope denial", verr)
			}
		})
	}
}
