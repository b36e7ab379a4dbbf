package version

import (
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Version == "(devel)" || i.Commit == "" || !strings.HasPrefix(i.GoVersion, "go") || !strings.Contains(i.Platform, "/") {
		t.Errorf("Get() = %+v", i)
	}
	cases := map[Info]string{
		{Version: "v1.2.3", Commit: "0123456789abcdef0123"}:       "v1.2.3 (commit 0123456789ab)",
		{Version: "v1.2.3", Commit: "0123456789abcdef0123-dirty"}: "v1.2.3 (commit 0123456789ab-dirty)",
		{Version: Unstamped, Commit: "unknown"}:                   Unstamped + " (commit unknown)",
	}
	for in, want := range cases {
		if got := in.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", in, got, want)
		}
	}
}
