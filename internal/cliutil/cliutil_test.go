package cliutil

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"
)

func TestHoistFlags(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "socket"}, &cli.BoolFlag{Name: "debug"}},
		Commands: []*cli.Command{
			{Name: "load", Subcommands: []*cli.Command{{Name: "image", Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "program", Aliases: []string{"p"}}, &cli.BoolFlag{Name: "all"},
			}}}},
			{Name: "list", Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}}}},
		},
	}
	cases := map[string]struct{ in, want []string }{
		"flags after argument": {
			in:   []string{"bpfctl", "load", "image", "oci:/x", "--program", "a:xdp", "-p=b:tc", "--all"},
			want: []string{"bpfctl", "load", "image", "--program", "a:xdp", "-p=b:tc", "--all", "oci:/x"},
		},
		"global flags first": {
			in:   []string{"bpfctl", "--socket", "/s", "--debug", "list", "x", "-o", "json"},
			want: []string{"bpfctl", "--socket", "/s", "--debug", "list", "-o", "json", "x"},
		},
		"double dash ends flags": {
			in:   []string{"bpfctl", "list", "--", "-o", "json"},
			want: []string{"bpfctl", "list", "--", "-o", "json"},
		},
		"unknown command untouched": {
			in:   []string{"bpfctl", "frob", "x", "--y"},
			want: []string{"bpfctl", "frob", "x", "--y"},
		},
		"unknown flag hoisted": {
			in:   []string{"bpfctl", "list", "x", "--bogus"},
			want: []string{"bpfctl", "list", "--bogus", "x"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, HoistFlags(app, tc.in)); diff != "" {
				t.Errorf("HoistFlags (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteJSON holds WriteJSON's output to a json.Encoder's with
// SetIndent("", "  "): the bytes users and scripts already read.
func TestWriteJSON(t *testing.T) {
	type inner struct {
		Tags []string          `json:"tags"`
		Meta map[string]string `json:"meta,omitempty"`
	}
	cases := map[string]any{
		"struct":         struct{ A, B int }{1, 2},
		"nested":         []inner{{Tags: []string{"x", "<y> & z"}, Meta: map[string]string{"b": "2", "a": "1"}}, {}},
		"empty list":     []int{},
		"nil":            nil,
		"string escapes": "line\nbreak \"quoted\" \u2028 <html>",
		"numbers":        map[string]float64{"pi": 3.14159, "big": 1e21},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := WriteJSON(&got, v); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("(-encoder +WriteJSON):\n%s", diff)
			}
		})
	}
	if err := WriteJSON(io.Discard, func() {}); err == nil {
		t.Error("a func was written as JSON")
	}
}
