// Command agentrequests prints the Load requests a release's bpfd-agent
// makes for BpfProgramConfigs. test/upgrade adds it to the source of a
// release (internal/testing/release) and builds it there, so that it calls
// that release's agent.LoadRequests.
//
// Input, one JSON object per line on stdin:
//
//	{"config": <BpfProgramConfig>, "primaryInterface": "eth0", "mapOwnerId": 0}
//
// Output, one line per input: {"requests": [<LoadRequest in protojson>...]}
// or {"error": "..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
)

type input struct {
	Config           v1alpha1.BpfProgramConfig `json:"config"`
	PrimaryInterface string                    `json:"primaryInterface"`
	MapOwnerID       uint64                    `json:"mapOwnerId"`
}

type output struct {
	Requests []json.RawMessage `json:"requests,omitempty"`
	Error    string            `json:"error,omitempty"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		var in input
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			fmt.Fprintln(os.Stderr, "agentrequests:", err)
			os.Exit(1)
		}
		var out output
		reqs, err := agent.LoadRequests(&in.Config, func() (string, error) { return in.PrimaryInterface, nil }, in.MapOwnerID)
		if err != nil {
			out.Error = err.Error()
		}
		for _, r := range reqs {
			b, err := protojson.Marshal(r)
			if err != nil {
				fmt.Fprintln(os.Stderr, "agentrequests:", err)
				os.Exit(1)
			}
			out.Requests = append(out.Requests, b)
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(os.Stderr, "agentrequests:", err)
			os.Exit(1)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "agentrequests:", err)
		os.Exit(1)
	}
}
