package artifact

import (
	"fmt"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	cases := map[string]struct {
		in, want string
		order    ByteOrder
		wantErr  bool
	}{
		"amd64":        {in: "linux/amd64", want: "linux/amd64", order: LittleEndian},
		"variant":      {in: "linux/arm/v7", want: "linux/arm/v7", order: LittleEndian},
		"big-endian":   {in: "linux/s390x", want: "linux/s390x", order: BigEndian},
		"neutral":      {in: "linux/bpfeb", want: "linux/bpfeb", order: BigEndian},
		"no arch":      {in: "linux", wantErr: true},
		"empty part":   {in: "linux//v7", wantErr: true},
		"unknown arch": {in: "linux/vax", wantErr: true},
		"too many":     {in: "linux/arm/v7/x", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePlatform(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParsePlatform(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			order, _ := PlatformByteOrder(p)
			if got := FormatPlatform(p); got != tc.want || order != tc.order {
				t.Errorf("ParsePlatform(%q) = %s (%s-endian), want %s (%s-endian)", tc.in, got, order, tc.want, tc.order)
			}
		})
	}
}

func ExampleParsePlatform() {
	p, err := ParsePlatform("linux/bpfel")
	if err != nil {
		panic(err)
	}
	order, _ := PlatformByteOrder(p)
	fmt.Println(FormatPlatform(p), order)
	// Output: linux/bpfel little
}
