package protocompat

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// base is the previous version in every case.
const base = `syntax = "proto3";
package demo.v1;
import "google/protobuf/timestamp.proto";
option go_package = "example.com/demo/v1;demov1";

service Demo {
  rpc Get(GetRequest) returns (GetResponse);
  rpc Watch(GetRequest) returns (stream GetResponse);
}
enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_BLUE = 2;
  reserved 9;
  reserved "COLOR_GREEN";
}
message GetRequest {
  uint64 id = 1;
  string name = 2;
  repeated string tags = 3;
  map<string, string> labels = 4;
  Color color = 5;
  oneof target {
    string path = 6;
    uint32 pid = 7;
  }
  optional uint32 limit = 8;
  google.protobuf.Timestamp since = 9;
  Inner inner = 10;
  reserved 20 to 29;
  reserved "old";
  message Inner { int32 depth = 1; }
}
message GetResponse { string value = 1; }
`

// edit returns base with each old replaced by its new.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("base has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestBreaking(t *testing.T) {
	cases := map[string]struct {
		edits []string
		want  []string // a fragment of each problem, in order
	}{
		"nothing":                                   {},
		"comments and formatting":                   {edits: []string{"uint64 id = 1;", "// id is the id.\n  uint64   id = 1;"}},
		"a field added":                             {edits: []string{"string value = 1;", "string value = 1;\n  int64 size = 2;"}},
		"a message, an enum value and an rpc":       {edits: []string{"COLOR_BLUE = 2;", "COLOR_BLUE = 2;\n  COLOR_PINK = 3;", "message GetResponse", "message Extra {}\nmessage GetResponse", "rpc Get(GetRequest) returns (GetResponse);", "rpc Get(GetRequest) returns (GetResponse);\n  rpc Put(GetResponse) returns (GetRequest);"}},
		"a field deleted, number and name reserved": {edits: []string{"string name = 2;", "reserved 2;\n  reserved \"name\";"}},
		"an enum value deleted and reserved":        {edits: []string{"COLOR_BLUE = 2;", "reserved 2;\n  reserved \"COLOR_BLUE\";"}},
		"a reserved range widened":                  {edits: []string{"reserved 20 to 29;", "reserved 20 to 39;"}},
		"a field deleted":                           {edits: []string{"string name = 2;", ""}, want: []string{"demo.v1.GetRequest.name (2) was deleted without reserving its name", "demo.v1.GetRequest.name (2) was deleted without reserving its number"}},
		"a field deleted, only its number reserved": {edits: []string{"string name = 2;", "reserved 2;"}, want: []string{"name (2) was deleted without reserving its name"}},
		"a field renumbered":                        {edits: []string{"string name = 2;", "string name = 11;"}, want: []string{"name (2) was deleted without reserving its name", "name (2) was deleted without reserving its number"}},
		"a field renamed":                           {edits: []string{"string name = 2;", "string title = 2;"}, want: []string{"name (2) was renamed title", "JSON name name became title"}},
		"a field's type":                            {edits: []string{"uint64 id = 1;", "int64 id = 1;"}, want: []string{"id (1): type uint64 became int64"}},
		"a field's message":                         {edits: []string{"google.protobuf.Timestamp since = 9;", "google.protobuf.Duration since = 9;", "import \"google/protobuf/timestamp.proto\";", "import \"google/protobuf/timestamp.proto\";\nimport \"google/protobuf/duration.proto\";"}, want: []string{"since (9): type google.protobuf.Timestamp became google.protobuf.Duration"}},
		"a field's enum":                            {edits: []string{"Color color = 5;", "Shade color = 5;", "message GetResponse", "enum Shade { SHADE_UNSPECIFIED = 0; }\nmessage GetResponse"}, want: []string{"color (5): type enum demo.v1.Color became enum demo.v1.Shade"}},
		"repeated to singular":                      {edits: []string{"repeated string tags = 3;", "string tags = 3;"}, want: []string{"tags (3): repeated became optional"}},
		"a map's value":                             {edits: []string{"map<string, string> labels = 4;", "map<string, bytes> labels = 4;"}, want: []string{"labels (4): type map<string, string> became map<string, bytes>"}},
		"out of a oneof":                            {edits: []string{"uint32 pid = 7;\n  }", "}\n  uint32 pid = 7;"}, want: []string{"pid (7): oneof \"target\" became \"\"", "pid (7): presence tracking changed"}},
		"presence dropped":                          {edits: []string{"optional uint32 limit = 8;", "uint32 limit = 8;"}, want: []string{"limit (8): presence tracking changed"}},
		"a reserved range shrunk":                   {edits: []string{"reserved 20 to 29;", "reserved 20 to 28;"}, want: []string{"no longer reserves field number 29"}},
		"a reserved name dropped":                   {edits: []string{"reserved \"old\";", ""}, want: []string{"no longer reserves field name old"}},
		"a nested message deleted":                  {edits: []string{"Inner inner = 10;", "", "message Inner { int32 depth = 1; }", ""}, want: []string{"field demo.v1.GetRequest.inner (10) was deleted without reserving its name", "field demo.v1.GetRequest.inner (10) was deleted without reserving its number", "message demo.v1.GetRequest.Inner was deleted"}},
		"an enum value deleted":                     {edits: []string{"COLOR_BLUE = 2;", ""}, want: []string{"COLOR_BLUE (2) was deleted without reserving its name", "COLOR_BLUE (2) was deleted without reserving its number"}},
		"an enum value renamed":                     {edits: []string{"COLOR_BLUE = 2;", "COLOR_AZURE = 2;"}, want: []string{"COLOR_BLUE (2) was renamed COLOR_AZURE"}},
		"an enum's reservation dropped":             {edits: []string{"reserved 9;\n", "", "reserved \"COLOR_GREEN\";", ""}, want: []string{"no longer reserves value 9", "no longer reserves value name COLOR_GREEN"}},
		"an rpc deleted":                            {edits: []string{"rpc Get(GetRequest) returns (GetResponse);", ""}, want: []string{"rpc demo.v1.Demo.Get was deleted"}},
		"an rpc's request":                          {edits: []string{"rpc Get(GetRequest) returns (GetResponse);", "rpc Get(GetResponse) returns (GetResponse);"}, want: []string{"request demo.v1.GetRequest became demo.v1.GetResponse"}},
		"an rpc's streaming":                        {edits: []string{"returns (stream GetResponse)", "returns (GetResponse)"}, want: []string{"rpc demo.v1.Demo.Watch: streaming changed"}},
		"a message renamed":                         {edits: []string{"message GetResponse { string value = 1; }", "message Reply { string value = 1; }", "returns (GetResponse);", "returns (Reply);", "returns (stream GetResponse);", "returns (stream Reply);"}, want: []string{"message demo.v1.GetResponse was deleted", "response demo.v1.GetResponse became demo.v1.Reply", "response demo.v1.GetResponse became demo.v1.Reply"}},
		"the package":                               {edits: []string{"package demo.v1;", "package demo.v2;"}, want: []string{"enum demo.v1.Color was deleted", "message demo.v1.GetRequest was deleted", "message demo.v1.GetResponse was deleted", "package demo.v1 became demo.v2", "service demo.v1.Demo was deleted"}},
		"the go package":                            {edits: []string{"demo/v1;demov1", "demo/v1;demo"}, want: []string{"go_package"}},
	}
	prev, err := Compile("demo.proto", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cur, err := Compile("demo.proto", []byte(edit(t, tc.edits...)))
			if err != nil {
				t.Fatal(err)
			}
			got := Breaking(prev, cur)
			if len(got) != len(tc.want) {
				t.Fatalf("problems (want %d):\n%s", len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: %q, want one with %q", i, got[i], w)
				}
			}
		})
	}
}

// TestReusedReservedNumber: a field on a reserved number does not compile,
// so it never reaches the comparison.
func TestReusedReservedNumber(t *testing.T) {
	_, err := Compile("demo.proto", []byte(edit(t, "string value = 1;", "string value = 1;\n  reserved 2;\n  string other = 2;")))
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("compile of a field on a reserved number: %v", err)
	}
}

func TestSummary(t *testing.T) {
	prev, err := Compile("demo.proto", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := Compile("demo.proto", []byte(edit(t, "string value = 1;", "string value = 1;\n  int64 size = 2;", "COLOR_BLUE = 2;", "COLOR_BLUE = 2;\n  COLOR_PINK = 3;")))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("field demo.v1.GetResponse.size (2), enum value demo.v1.COLOR_PINK (3)", Summary(prev, cur)); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}
