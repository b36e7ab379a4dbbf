package runtime

import (
	"maps"
	"slices"
	"strings"
	"unique"
)

// The catalog holds every record in memory, decoded from the store's JSON,
// which gives each record strings and a metadata map of its own. The
// programs of one artifact, loaded by one config or one client, repeat the
// same reference, digest, origin, signer, rule, policy fingerprint, object,
// hook and labels, a thousand times over on a busy node. compact makes a
// record share them: its strings are interned (unique.Make, which lets go
// of a string no record holds), and its metadata map is the one map of
// those labels the catalog holds, counted by the records that use it.
// Shared maps are never changed in place (see record.clone).

// compactStrings interns r's strings.
func compactStrings(r *record) {
	for _, s := range []*string{
		&r.Name, &r.Object, &r.Hook,
		&r.Provenance.Reference, &r.Provenance.Origin, &r.Provenance.Digest,
		&r.Provenance.Signer, &r.Provenance.Rule, &r.Provenance.PolicyFingerprint,
		&r.Owner.Config, &r.Owner.Namespace,
	} {
		*s = intern(*s)
	}
	for i := range r.Maps {
		r.Maps[i].Name = intern(r.Maps[i].Name)
	}
	if k := r.Kernel; k != nil {
		k.Name, k.Tag = intern(k.Name), intern(k.Tag)
	}
}

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// labelSets shares identical metadata maps among the catalog's records.
// Its methods are called with the catalog's lock held.
type labelSets struct {
	m map[string]*labelSet
}

type labelSet struct {
	labels map[string]string
	users  int
}

// labelsKey is the key of a set of labels: its pairs, sorted by key.
func labelsKey(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// share returns the map of labels the catalog holds, equal to labels, and
// counts one more user of it.
func (ls *labelSets) share(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return labels
	}
	if ls.m == nil {
		ls.m = map[string]*labelSet{}
	}
	key := labelsKey(labels)
	s := ls.m[key]
	if s == nil {
		s = &labelSet{labels: make(map[string]string, len(labels))}
		for k, v := range labels {
			s.labels[intern(k)] = intern(v)
		}
		ls.m[key] = s
	}
	s.users++
	return s.labels
}

// release counts one user less of the labels share returned, and forgets
// them when none is left.
func (ls *labelSets) release(labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	key := labelsKey(labels)
	if s := ls.m[key]; s != nil {
		if s.users--; s.users <= 0 {
			delete(ls.m, key)
		}
	}
}
