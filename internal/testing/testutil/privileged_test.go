package testutil

import "testing"

func TestRequired(t *testing.T) {
	cases := map[string]struct {
		value string
		want  bool
	}{
		"unset":       {value: "", want: false},
		"zero":        {value: "0", want: false},
		"one":         {value: "1", want: true},
		"kernel name": {value: "debian-6.1", want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("BPFD_TEST_GATE", tc.value)
			if got := required("BPFD_TEST_GATE"); got != tc.want {
				t.Fatalf("required(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}
