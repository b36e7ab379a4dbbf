package mapview_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/pkg/runtime/mapview"
)

var (
	u8   = &btf.Int{Name: "__u8", Size: 1}
	u32  = &btf.Int{Name: "__u32", Size: 4}
	s32  = &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u64  = &btf.Int{Name: "__u64", Size: 8}
	char = &btf.Int{Name: "char", Size: 1, Encoding: btf.Char}
	kind = &btf.Enum{Name: "kind", Size: 4, Values: []btf.EnumValue{{Name: "KIND_OPEN", Value: 1}, {Name: "KIND_CLOSE", Value: 2}}}
	// struct stats { __u64 count; enum kind last; char comm[8]; __u32 hist[2]; };
	stats = &btf.Struct{Name: "stats", Size: 32, Members: []btf.Member{
		{Name: "count", Type: u64, Offset: 0},
		{Name: "last", Type: kind, Offset: 64},
		{Name: "comm", Type: &btf.Array{Type: char, Nelems: 8}, Offset: 96},
		{Name: "hist", Type: &btf.Array{Type: u32, Nelems: 2}, Offset: 160},
	}}
	// struct totals { __u64 packets; __u32 bytes[2]; };
	totals = &btf.Struct{Name: "totals", Size: 16, Members: []btf.Member{
		{Name: "packets", Type: u64, Offset: 0},
		{Name: "bytes", Type: &btf.Array{Type: u32, Nelems: 2}, Offset: 64},
	}}
)

func statsBytes() []byte {
	b := make([]byte, 32)
	binary.NativeEndian.PutUint64(b, 7)
	binary.NativeEndian.PutUint32(b[8:], 2)
	copy(b[12:], "bash")
	binary.NativeEndian.PutUint32(b[20:], 3)
	binary.NativeEndian.PutUint32(b[24:], 4)
	return b
}

func TestJSON(t *testing.T) {
	neg := make([]byte, 4)
	binary.NativeEndian.PutUint32(neg, uint32(0xfffffffe))
	unknown := make([]byte, 4)
	binary.NativeEndian.PutUint32(unknown, 9)
	cases := map[string]struct {
		typ  btf.Type
		in   []byte
		want string
		err  error
	}{
		"struct":          {stats, statsBytes(), `{"count":7,"last":"KIND_CLOSE","comm":"bash","hist":[3,4]}`, nil},
		"signed":          {s32, neg, `-2`, nil},
		"typedef":         {&btf.Typedef{Name: "pid_t", Type: s32}, neg, `-2`, nil},
		"unknown enum":    {kind, unknown, `9`, nil},
		"binary chars":    {&btf.Array{Type: char, Nelems: 2}, []byte{1, 2}, `[1,2]`, nil},
		"u8 array":        {&btf.Array{Type: u8, Nelems: 2}, []byte{'a', 0}, `[97,0]`, nil},
		"datasec":         {&btf.Datasec{Name: ".bss", Size: 4, Vars: []btf.VarSecinfo{{Type: &btf.Var{Name: "packets", Type: u32}, Offset: 0, Size: 4}}}, unknown, `{"packets":9}`, nil},
		"short":           {stats, make([]byte, 31), "", mapview.ErrSize},
		"long":            {u32, make([]byte, 5), "", mapview.ErrSize},
		"function":        {&btf.Func{Name: "f", Type: &btf.FuncProto{}}, nil, "", mapview.ErrUnsupported},
		"member past end": {&btf.Struct{Name: "bad", Size: 4, Members: []btf.Member{{Name: "x", Type: u64}}}, make([]byte, 4), "", mapview.ErrSize},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := mapview.JSON(tc.typ, tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("JSON: error %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	cases := map[string]struct {
		typ  btf.Type
		text string
		err  error
	}{
		"struct":        {stats, `{"count":7,"last":"KIND_CLOSE","comm":"bash","hist":[3,4]}`, nil},
		"u32":           {u32, `4294967295`, nil},
		"signed":        {s32, `-2`, nil},
		"enum":          {kind, `"KIND_OPEN"`, nil},
		"too big":       {u32, `4294967296`, mapview.ErrValue},
		"negative":      {u32, `-1`, mapview.ErrValue},
		"unknown field": {stats, `{"nope":1}`, mapview.ErrValue},
		"unknown enum":  {kind, `"KIND_NOPE"`, mapview.ErrValue},
		"long string":   {stats, `{"comm":"123456789"}`, mapview.ErrValue},
		"not json":      {u32, `1 2`, mapview.ErrValue},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := mapview.Encode(tc.typ, []byte(tc.text))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Encode: error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			got, err := mapview.JSON(tc.typ, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.text, string(got)); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSum(t *testing.T) {
	a, _ := mapview.Encode(totals, []byte(`{"packets":1,"bytes":[10,20]}`))
	b, _ := mapview.Encode(totals, []byte(`{"packets":2,"bytes":[30,40]}`))
	sum, err := mapview.Sum(totals, [][]byte{a, b})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := mapview.JSON(totals, sum)
	if diff := cmp.Diff(`{"packets":3,"bytes":[40,60]}`, string(got)); diff != "" {
		t.Errorf("Sum (-want +got):\n%s", diff)
	}
	if _, err := mapview.Sum(stats, [][]byte{statsBytes()}); !errors.Is(err, mapview.ErrUnsupported) {
		t.Errorf("Sum of a struct with an enum and chars: error %v, want ErrUnsupported", err)
	}
	if _, err := mapview.Sum(totals, [][]byte{a[:3]}); !errors.Is(err, mapview.ErrSize) {
		t.Errorf("Sum of a short value: error %v, want ErrSize", err)
	}
}

func ExampleJSON() {
	b := make([]byte, 32)
	binary.NativeEndian.PutUint64(b, 7)
	binary.NativeEndian.PutUint32(b[8:], 1)
	copy(b[12:], "sh")
	out, _ := mapview.JSON(stats, b)
	fmt.Println(string(out))
	// Output: {"count":7,"last":"KIND_OPEN","comm":"sh","hist":[0,0]}
}

// FuzzJSON feeds arbitrary bytes to the decoder and arbitrary JSON to the
// encoder: they fail with an error, never panic, and what Encode accepts
// decodes.
func FuzzJSON(f *testing.F) {
	f.Add(statsBytes(), `{"count":1,"comm":"x"}`)
	f.Add(make([]byte, 32), `{"hist":[1,2,3]}`)
	f.Fuzz(func(t *testing.T, b []byte, text string) {
		mapview.JSON(stats, b)
		enc, err := mapview.Encode(stats, []byte(text))
		if err != nil {
			return
		}
		if _, err := mapview.JSON(stats, enc); err != nil {
			t.Errorf("Encode(%q) gave bytes JSON refuses: %v", text, err)
		}
	})
}
