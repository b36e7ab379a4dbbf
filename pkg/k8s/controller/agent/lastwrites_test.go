package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func TestLastWrites(t *testing.T) {
	cached := v1alpha1.BpfProgramStatus{ObservedConfigGeneration: 1}
	written := v1alpha1.BpfProgramStatus{ObservedConfigGeneration: 2}
	at := func(uid, rv string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{UID: k8stypes.UID("uid-" + uid), ResourceVersion: rv}
	}
	for _, tc := range []struct {
		name        string
		cache       *metav1.ObjectMeta
		want        v1alpha1.BpfProgramStatus
		wantVersion string
	}{
		{"the cache still holds the version written over", at("a", "10"), written, "11"},
		{"the cache holds the write", at("a", "11"), cached, "11"},
		{"the cache holds a later version", at("a", "12"), cached, "12"},
		{"another report", at("b", "10"), cached, "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l lastWrites
			l.wrote(at("a", "11"), "10", written)
			got, version := l.current(tc.cache, cached)
			if diff := cmp.Diff(tc.want, got); diff != "" || version != tc.wantVersion {
				t.Errorf("current = version %s, status (-want +got):\n%s; want version %s", version, diff, tc.wantVersion)
			}
		})
	}

	t.Run("forgotten once the cache caught up or the report is deleted", func(t *testing.T) {
		var l lastWrites
		l.wrote(at("a", "11"), "10", written)
		l.current(at("a", "11"), cached)
		if got, _ := l.current(at("a", "10"), cached); !cmp.Equal(got, cached) {
			t.Errorf("after the cache caught up: %+v, want the cached status", got)
		}
		l.wrote(at("b", "21"), "20", written)
		l.forget("uid-b")
		if got, _ := l.current(at("b", "20"), cached); !cmp.Equal(got, cached) {
			t.Errorf("after forget: %+v, want the cached status", got)
		}
	})
}
