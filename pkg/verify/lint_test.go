package verify

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLint(t *testing.T) {
	pol := parsePolicy(t, nil, `rules:
- name: team
  images: ["oci:team/**", "registry.example.com/net/*"]
  authorities: [{key: {path: k0.pub}}]
- name: net
  images: ["registry.example.com/net/xdp", "registry.example.com/net/a/b"]
  authorities: [{key: {path: k0.pub}}]
- name: bad
  images: ["registry.example.com/obs:v1", "registry.example.com/Obs/x", "registry.example.com", "x/y@sha256:ab"]
  authorities: [{key: {path: k0.pub}}]
- name: all
  images: ["**"]
  authorities: [{key: {path: k1.pub}}]
- name: after-all
  images: ["oci:/var/lib/bpfd/**"]
  allowUnsigned: true
  namespaces: ["*"]
`)
	got := pol.Lint()
	want := []Problem{
		{5, "rules[0].images[0]", `"oci:team/**" can never match: oci: names are absolute paths (oci:/path), and this one is relative`},
		{8, "rules[1].images[0]", `"registry.example.com/net/xdp" is covered by rules[0].images[1] "registry.example.com/net/*" of the earlier rule "team": rule "net" never governs those images (first match)`},
		{11, "rules[2].images[0]", `"registry.example.com/obs:v1" can never match: names never hold a tag; a rule covers every tag of its images`},
		{11, "rules[2].images[1]", `"registry.example.com/Obs/x" can never match: repository names are lower case`},
		{11, "rules[2].images[2]", `"registry.example.com" can never match: a registry name is host/repository, and this has no repository`},
		{11, "rules[2].images[3]", `"x/y@sha256:ab" can never match: names never hold a digest; a rule covers every digest of its images`},
		{17, "rules[4].images[0]", `"oci:/var/lib/bpfd/**" is covered by rules[3].images[0] "**" of the earlier rule "all": rule "after-all" never governs those images (first match)`},
		{17, "rules[4].namespaces", `rule "after-all" lets every namespace load its images unsigned: list the namespaces that may`},
		{17, "rules[4]", `rule "after-all" is shadowed: earlier rules cover every image it names, so it never applies`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lint (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"r/*", "r/x?", true},
		{"r/*", "r/a/b", false},
		{"r/*", "r/[/]", false},
		{"r/**", "r/a/*", true},
		{"r/a*", "r/b", false},
		{"r/[ab]", "r/a", false}, // conservative
	} {
		if got := covers(c.a, c.b); got != c.want {
			t.Errorf("covers(%q, %q) = %t, want %t", c.a, c.b, got, c.want)
		}
	}
}
