package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/controller/agent"
)

// plant creates, as an administrator would, a BpfProgram called name with
// spec (config, node), controlled by a config of uid, reporting Loaded from
// a digest nobody loaded.
func plant(t *testing.T, name, config, node string, uid types.UID) *v1alpha1.BpfProgram {
	t.Helper()
	ctx := context.Background()
	bp := &v1alpha1.BpfProgram{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "BpfProgramConfig", Name: config, UID: uid, Controller: ptr.To(true),
		}}},
		Spec: v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: config},
	}
	if err := testEnv.Client.Create(ctx, bp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testEnv.Client.Delete(ctx, bp) })
	bp.Status = v1alpha1.BpfProgramStatus{
		ObservedConfigGeneration: 1,
		Digest:                   "sha256:" + fmt.Sprintf("%064d", 0),
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonLoaded,
			Message: "planted", LastTransitionTime: metav1.Now()}},
	}
	if err := testEnv.Client.Status().Update(ctx, bp); err != nil {
		t.Fatal(err)
	}
	return bp
}

// checkReport checks that bp is the agent's own report: its labels, and a
// status of what bpfd loaded, not what was planted.
func checkReport(t *testing.T, bp *v1alpha1.BpfProgram, cfg *v1alpha1.BpfProgramConfig, node string) {
	t.Helper()
	if diff := cmp.Diff(v1alpha1.BpfProgramLabels(cfg.Name, node, cfg.UID), bp.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if want := "sha256:" + digestA[len("@sha256:"):]; bp.Status.Digest != want {
		t.Errorf("digest %q, want %q", bp.Status.Digest, want)
	}
	if msg := meta.FindStatusCondition(bp.Status.Conditions, v1alpha1.ConditionReady).Message; msg == "planted" {
		t.Errorf("the planted Ready condition is still there")
	}
}

// TestAgentMigratesOldNames: a report an older agent made under the name
// <config>-<node> is replaced by one under BpfProgramName.
func TestAgentMigratesOldNames(t *testing.T) {
	name := k8stest.Name(t)
	node := name + "-a"
	testEnv.CreateNode(t, node, map[string]string{"test": name})
	cfg := createConfig(t, name, name, node)
	old := plant(t, name+"-"+node, cfg.Name, node, cfg.UID)

	startAgent(t, node, agent.ReconcilerOptions{})
	bp := waitReport(t, cfg.Name, node, v1alpha1.ReasonLoaded)
	checkReport(t, bp, cfg, node)
	testEnv.WaitGone(t, timeout, old)

	// kubectl get bp -l finds it by label.
	var list v1alpha1.BpfProgramList
	if err := testEnv.Client.List(context.Background(), &list, client.MatchingLabels{v1alpha1.LabelNode: node, v1alpha1.LabelConfig: name}); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].UID != bp.UID {
		t.Errorf("by label: %d BpfPrograms, want the report", len(list.Items))
	}
}

// TestAgentDoesNotTrustTheName: objects that carry the name of the node's
// report on a config but are not it are never reported into. One the node's
// agent may not own (another node's spec) blocks the config on this node
// until it is removed; one of this node with another config's spec is this
// node's stray of that config and goes; one controlled by another config (an
// older one of the same name, or made up) is replaced, its status with it.
func TestAgentDoesNotTrustTheName(t *testing.T) {
	cases := map[string]struct {
		plant func(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node string) *v1alpha1.BpfProgram
		// blocks: nothing loads until the planted object is deleted.
		blocks bool
	}{
		"another node's spec": {
			plant: func(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node string) *v1alpha1.BpfProgram {
				return plant(t, v1alpha1.BpfProgramName(cfg.Name, node), cfg.Name, node+"-other", cfg.UID)
			},
			blocks: true,
		},
		"another config's spec": {
			plant: func(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node string) *v1alpha1.BpfProgram {
				return plant(t, v1alpha1.BpfProgramName(cfg.Name, node), cfg.Name+"-other", node, "uid-other")
			},
		},
		"another config's uid": {
			plant: func(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node string) *v1alpha1.BpfProgram {
				return plant(t, v1alpha1.BpfProgramName(cfg.Name, node), cfg.Name, node, "uid-of-an-older-config")
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			name := k8stest.Name(t)
			node := name + "-a"
			testEnv.CreateNode(t, node, map[string]string{"test": name})
			cfg := createConfig(t, name, name, node)
			planted := tc.plant(t, cfg, node)

			n := startAgent(t, node, agent.ReconcilerOptions{})
			if tc.blocks {
				time.Sleep(2 * time.Second)
				if calls := n.daemon.Calls("Load"); calls != 0 {
					t.Fatalf("%d Load calls while another node's object holds the report's name", calls)
				}
				got := &v1alpha1.BpfProgram{}
				if err := testEnv.Client.Get(ctx, client.ObjectKeyFromObject(planted), got); err != nil {
					t.Fatal(err)
				}
				if got.ResourceVersion != planted.ResourceVersion {
					t.Errorf("the agent wrote into another node's object: %+v", got.Status)
				}
				if err := testEnv.Client.Delete(ctx, planted); err != nil {
					t.Fatal(err)
				}
			}
			bp := waitReport(t, cfg.Name, node, v1alpha1.ReasonLoaded)
			if bp.UID == planted.UID {
				t.Fatal("the agent adopted the planted object")
			}
			checkReport(t, bp, cfg, node)
		})
	}
}
