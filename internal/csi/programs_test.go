package csi

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMapsOf(t *testing.T) {
	m := func(name string, id uint32) Map { return Map{Name: name, ID: id, PinPath: "/run/bpfd/fs/" + name} }
	progs := []Program{
		// config a: two attachments of one program; the second uses the
		// first's maps but has a .rodata of its own.
		{ID: 1, Config: "a", ReaderNamespaces: []string{"apps", "monitoring"}, Maps: []Map{m("stats", 10), m(".rodata", 11)}},
		{ID: 2, Config: "a", ReaderNamespaces: []string{"apps", "monitoring"}, MapOwnerID: 1, Maps: []Map{m("stats", 10), m(".rodata", 12)}},
		// config b uses a's stats (its map owner) and has a map of its own.
		{ID: 3, Config: "b", ReaderNamespaces: []string{"apps"}, MapOwnerID: 1, Maps: []Map{m("stats", 10), m("own", 13)}},
		// config c's map owner is gone: none of its maps can be told apart
		// from the owner's, so none is given.
		{ID: 4, Config: "c", ReaderNamespaces: []string{"apps"}, MapOwnerID: 99, Maps: []Map{m("stats", 14)}},
		// config d's programs disagree on the namespaces (an update under
		// way): only those both admit are.
		{ID: 5, Config: "d", ReaderNamespaces: []string{"x", "y"}, Maps: []Map{m("stats", 15)}},
		{ID: 6, Config: "d", ReaderNamespaces: []string{"y", "z"}, MapOwnerID: 5, Maps: []Map{m("stats", 15)}},
		// a program of no config.
		{ID: 7, Maps: []Map{m("stats", 16)}},
		// config e: two map owners pointing at each other.
		{ID: 8, Config: "e", MapOwnerID: 9, Maps: []Map{m("stats", 17)}},
		{ID: 9, Config: "e", MapOwnerID: 8, Maps: []Map{m("stats", 17)}},
		// tenant team-a's config named like cluster config a, admitting no
		// namespace, with a map named like a's and one of its own: none of
		// it is a's. Tenant team-b's config a uses team-a's map.
		{ID: 10, Config: "a", Namespace: "team-a", Maps: []Map{m("stats", 20), m("tenant_secret", 21)}},
		{ID: 11, Config: "a", Namespace: "team-b", ReaderNamespaces: []string{"team-a"}, MapOwnerID: 10, Maps: []Map{m("stats", 20), m("own", 22)}},
		// a cluster config's program whose map owner is team-a's: the
		// tenant's maps are not the cluster config's.
		{ID: 12, Config: "f", ReaderNamespaces: []string{"apps"}, MapOwnerID: 10, Maps: []Map{m("tenant_secret", 21)}},
	}
	cases := map[string]struct {
		config    string
		namespace string // the tenant's; empty for a cluster config
		want      *configMaps
		err       error
	}{
		"own maps, the first program's .rodata": {"a", "", &configMaps{config: "a", namespaces: []string{"apps", "monitoring"},
			maps: map[string]Map{"stats": m("stats", 10), ".rodata": m(".rodata", 11)}}, nil},
		"a map owner's maps are not the config's": {"b", "", &configMaps{config: "b", namespaces: []string{"apps"},
			maps: map[string]Map{"own": m("own", 13)}}, nil},
		"a gone map owner's maps are no one's": {"c", "", &configMaps{config: "c", namespaces: []string{"apps"}, maps: map[string]Map{}}, nil},
		"namespaces every program admits":      {"d", "", &configMaps{config: "d", namespaces: []string{"y"}, maps: map[string]Map{"stats": m("stats", 15)}}, nil},
		"a cycle of map owners gives nothing":  {"e", "", &configMaps{config: "e", namespaces: []string{}, maps: map[string]Map{}}, nil},
		"no program of the config":             {"unknown", "", nil, ErrNotFound},
		"programs of no config are no one's":   {"", "", nil, ErrInvalid},

		"a tenant's config of a cluster config's name is not the cluster config's": {"a", "", &configMaps{config: "a", namespaces: []string{"apps", "monitoring"},
			maps: map[string]Map{"stats": m("stats", 10), ".rodata": m(".rodata", 11)}}, nil},
		"a tenant's maps are not a cluster config's through a map owner": {"f", "", &configMaps{config: "f", namespaces: []string{"apps"}, maps: map[string]Map{}}, nil},
		"a tenant config's maps, to its own namespace only": {"a", "team-a", &configMaps{config: "a", namespace: "team-a", namespaces: []string{"team-a"},
			maps: map[string]Map{"stats": m("stats", 20), "tenant_secret": m("tenant_secret", 21)}}, nil},
		"another tenant's config of the name: its own maps, its own namespace whatever it admits": {"a", "team-b", &configMaps{config: "a", namespace: "team-b", namespaces: []string{"team-b"},
			maps: map[string]Map{"own": m("own", 22)}}, nil},
		"a tenant without a config of the name":    {"a", "team-c", nil, ErrNotFound},
		"a tenant config no cluster config shares": {"b", "team-a", nil, ErrNotFound},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := mapsOf(progs, tc.config, tc.namespace)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(configMaps{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
