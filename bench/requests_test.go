package main

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVerbOf(t *testing.T) {
	cases := map[string]struct {
		method, path, watch string
		want                string
	}{
		"list nodes":                {http.MethodGet, "/api/v1/nodes", "", "list"},
		"get a node":                {http.MethodGet, "/api/v1/nodes/worker-1", "", "get"},
		"watch nodes":               {http.MethodGet, "/api/v1/nodes", "true", "watch"},
		"watch, old style":          {http.MethodGet, "/api/v1/nodes", "1", "watch"},
		"create a BpfProgram":       {http.MethodPost, "/apis/bpfd.io/v1alpha1/bpfprograms", "", "create"},
		"update a config":           {http.MethodPut, "/apis/bpfd.io/v1alpha1/bpfprogramconfigs/c", "", "update"},
		"update status":             {http.MethodPut, "/apis/bpfd.io/v1alpha1/bpfprograms/b/status", "", "update status"},
		"patch in a namespace":      {http.MethodPatch, "/apis/apps/v1/namespaces/bpfd/daemonsets/bpfd", "", "patch"},
		"list in a namespace":       {http.MethodGet, "/api/v1/namespaces/bpfd/configmaps", "", "list"},
		"get a namespace":           {http.MethodGet, "/api/v1/namespaces/bpfd", "", "get"},
		"delete":                    {http.MethodDelete, "/apis/bpfd.io/v1alpha1/bpfprograms/b", "", "delete"},
		"delete a collection":       {http.MethodDelete, "/apis/bpfd.io/v1alpha1/bpfprograms", "", "deletecollection"},
		"discovery of the groups":   {http.MethodGet, "/apis", "", "discovery"},
		"discovery of a version":    {http.MethodGet, "/apis/bpfd.io/v1alpha1", "", "discovery"},
		"discovery of the core":     {http.MethodGet, "/api/v1", "", "discovery"},
		"discovery of the versions": {http.MethodGet, "/api", "", "discovery"},
		"not the API":               {http.MethodGet, "/version", "", "other"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, verbOf(c.method, c.path, c.watch)); diff != "" {
				t.Errorf("verbOf(%s %s) (-want +got):\n%s", c.method, c.path, diff)
			}
		})
	}
}
