package operator

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

func TestHoldProgress(t *testing.T) {
	cfg := &v1alpha1.BpfProgramConfig{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 1}}
	status := func(generation int64, selected, loaded int32) v1alpha1.BpfProgramConfigStatus {
		sel := map[string]bool{}
		reports := map[string]*v1alpha1.BpfProgram{}
		for i := range selected {
			node := string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
			sel[node] = true
			if i < loaded {
				reports[node] = report(generation, metav1.ConditionTrue, v1alpha1.ReasonLoaded, "")
			}
		}
		c := cfg.DeepCopy()
		c.Generation = generation
		return aggregate(c, sel, reports)
	}
	tests := []struct {
		name     string
		old, new v1alpha1.BpfProgramConfigStatus
		wrote    time.Duration // ago; 0 for never
		want     time.Duration // about
	}{
		{"first write", v1alpha1.BpfProgramConfigStatus{}, status(1, 10, 0), 0, 0},
		{"never written by this operator", status(1, 10, 1), status(1, 10, 2), 0, 0},
		{"progress, 10 nodes", status(1, 10, 1), status(1, 10, 2), time.Second, time.Second},
		{"progress, 1,000 nodes", status(1, 1000, 1), status(1, 1000, 2), time.Second, 19 * time.Second},
		{"progress after the interval", status(1, 10, 1), status(1, 10, 2), 3 * time.Second, 0},
		{"all loaded", status(1, 10, 9), status(1, 10, 10), time.Second, 0},
		{"new generation", status(1, 10, 10), status(2, 10, 0), time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewConfigReconciler(nil, nil, ConfigReconcilerOptions{ProgressInterval: 2 * time.Second})
			if tt.wrote > 0 {
				r.wrote[cfg.Name] = time.Now().Add(-tt.wrote)
			}
			c := cfg.DeepCopy()
			c.Status = tt.old
			got := r.holdProgress(c, tt.new)
			if got < 0 {
				got = 0
			}
			if d := got - tt.want; d > 100*time.Millisecond || d < -100*time.Millisecond {
				t.Errorf("holdProgress = %s, want about %s", got, tt.want)
			}
		})
	}
}
