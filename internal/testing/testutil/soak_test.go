package testutil

import "testing"

func TestIterations(t *testing.T) {
	cases := map[string]struct {
		soak, env string
		want      int
	}{
		"short by default":       {want: 5},
		"long under BPFD_SOAK=1": {soak: "1", want: 500},
		"BPFD_SOAK=0 is short":   {soak: "0", want: 5},
		"the test's own count":   {env: "42", want: 42},
		"its count beats soak":   {soak: "1", env: "7", want: 7},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv(SoakEnv, tc.soak)
			t.Setenv("BPFD_TEST_ITERATIONS", tc.env)
			if got := Iterations(t, "BPFD_TEST_ITERATIONS", 5, 500); got != tc.want {
				t.Fatalf("Iterations = %d, want %d", got, tc.want)
			}
		})
	}
}
