package daemon

import "testing"

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want ByteSize
		err  bool
		out  string
	}{
		{in: "0", want: 0, out: "0"},
		{in: "1000", want: 1000, out: "1000"},
		{in: "1024", want: 1024, out: "1Ki"},
		{in: "64Mi", want: 64 << 20, out: "64Mi"},
		{in: " 3Gi ", want: 3 << 30, out: "3Gi"},
		{in: "2Ti", want: 2 << 40, out: "2Ti"},
		{in: "1536Ki", want: 1536 << 10, out: "1536Ki"},
		{in: "9223372036854775807", want: 1<<63 - 1, out: "9223372036854775807"},
		{in: "8388608Ti", err: true},
		{in: "-1", err: true},
		{in: "-1Ki", err: true},
		{in: "1.5Gi", err: true},
		{in: "1GB", err: true},
		{in: "Mi", err: true},
		{in: "", err: true},
	}
	for _, c := range cases {
		got, err := ParseByteSize(c.in)
		if c.err {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v, want %d", c.in, got, err, c.want)
		}
		if s := got.String(); s != c.out {
			t.Errorf("%d.String() = %q, want %q", got, s, c.out)
		}
	}
}
