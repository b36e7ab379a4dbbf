package appclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/internal/testing/k8stest"
	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
	"github.com/bpfd-dev/bpfd/pkg/k8s/appclient"
)

var testEnv *k8stest.Env

func TestMain(m *testing.M) { k8stest.Main(m, &testEnv) }

func newClient(t *testing.T) *appclient.Client {
	t.Helper()
	c, err := appclient.NewForConfig(testEnv.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// config returns a config named for the test.
func config(t *testing.T) *v1alpha1.BpfProgramConfig {
	cfg := counterConfig()
	cfg.Name = k8stest.Name(t)
	cfg.Generation = 0
	cfg.Spec.NodeSelector = v1alpha1.LabelSelector{}
	return cfg
}

// report writes node's BpfProgram of cfg as its agent would: created,
// then its status with reason for the config's generation. It may run in
// a goroutine of its own: a failure fails the test without ending it.
func report(t *testing.T, cfg *v1alpha1.BpfProgramConfig, node, reason, message string) {
	t.Helper()
	ctx := context.Background()
	bp := &v1alpha1.BpfProgram{}
	key := client.ObjectKey{Name: v1alpha1.BpfProgramName(cfg.Name, node)}
	if err := testEnv.Client.Get(ctx, key, bp); err != nil {
		bp = &v1alpha1.BpfProgram{ObjectMeta: metav1.ObjectMeta{Name: key.Name}, Spec: v1alpha1.BpfProgramSpec{NodeName: node, ConfigName: cfg.Name}}
		if err := testEnv.Client.Create(ctx, bp); err != nil {
			t.Error(err)
			return
		}
	}
	status := metav1.ConditionFalse
	if reason == v1alpha1.ReasonLoaded {
		status = metav1.ConditionTrue
		bp.Status.Programs = nodeProgram(node, reason, message).Status.Programs
	}
	bp.Status.ObservedConfigGeneration = cfg.Generation
	meta.SetStatusCondition(&bp.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message})
	if err := testEnv.Client.Status().Update(ctx, bp); err != nil {
		t.Error(err)
		return
	}
	t.Cleanup(func() { testEnv.Client.Delete(context.Background(), bp) })
}

func TestApplyAndNodeStatuses(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	cfg := config(t)
	created, err := c.Apply(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), cfg.Name) })
	if created.Generation != 1 {
		t.Errorf("created generation %d, want 1", created.Generation)
	}
	again, err := c.Apply(ctx, cfg)
	if err != nil || again.Generation != 1 {
		t.Errorf("applying the same spec: generation %d, %v; want 1", again.Generation, err)
	}
	cfg.Spec.MapReaderNamespaces = []string{"xdp-counter", "monitoring"}
	cfg.Labels["tier"] = "2"
	updated, err := c.Apply(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Generation != 2 || !cmp.Equal(updated.Spec.MapReaderNamespaces, cfg.Spec.MapReaderNamespaces) || updated.Labels["tier"] != "2" {
		t.Errorf("updated: generation %d, namespaces %v, labels %v", updated.Generation, updated.Spec.MapReaderNamespaces, updated.Labels)
	}

	// Another config's report is not this one's: the API server selects
	// by spec.configName.
	other := config(t)
	other.Name += "-other"
	if _, err := c.Apply(ctx, other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), other.Name) })
	report(t, updated, "worker-2", v1alpha1.ReasonPolicyDenied, "no rule admits it")
	report(t, created, "worker-1", v1alpha1.ReasonLoaded, "loaded")
	report(t, other, "worker-1", v1alpha1.ReasonLoaded, "loaded")
	got, err := c.NodeStatuses(ctx, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Node, Reason   string
		Ready, Current bool
	}
	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.Node, s.Reason, s.Ready, s.Current})
	}
	want := []row{{"worker-1", v1alpha1.ReasonLoaded, true, false}, {"worker-2", v1alpha1.ReasonPolicyDenied, false, true}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("node statuses (-want +got):\n%s", diff)
	}
}

func TestWaitLoaded(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)

	t.Run("waits for the node's agent", func(t *testing.T) {
		cfg, err := c.Apply(ctx, config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Delete(context.Background(), cfg.Name) })
		go func() {
			time.Sleep(300 * time.Millisecond)
			report(t, cfg, "worker-1", v1alpha1.ReasonPending, "waiting for the node's finalizer")
			time.Sleep(300 * time.Millisecond)
			report(t, cfg, "worker-1", v1alpha1.ReasonLoaded, "loaded")
		}()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		start := time.Now()
		bp, err := c.WaitLoaded(wctx, cfg.Name, "worker-1")
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < 500*time.Millisecond || len(bp.Status.Programs) != 1 {
			t.Errorf("WaitLoaded returned after %s with %d programs, want after the report and 1", time.Since(start), len(bp.Status.Programs))
		}
	})

	t.Run("a report on an older generation is not loaded", func(t *testing.T) {
		cfg, err := c.Apply(ctx, config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Delete(context.Background(), cfg.Name) })
		report(t, cfg, "worker-1", v1alpha1.ReasonLoaded, "loaded")
		edited := cfg.DeepCopy()
		edited.Spec.MapReaderNamespaces = []string{"other"}
		if cfg, err = c.Apply(ctx, edited); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = c.WaitLoaded(wctx, cfg.Name, "worker-1")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "generation 1 of 2") {
			t.Errorf("WaitLoaded: %v, want a deadline naming generation 1 of 2", err)
		}
	})

	t.Run("a refusal ends the wait", func(t *testing.T) {
		cfg, err := c.Apply(ctx, config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Delete(context.Background(), cfg.Name) })
		go func() {
			time.Sleep(200 * time.Millisecond)
			report(t, cfg, "worker-1", v1alpha1.ReasonVerifierRejected, "program xdp_counter: invalid mem access")
		}()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = c.WaitLoaded(wctx, cfg.Name, "worker-1")
		var refused *appclient.RefusedError
		if !errors.Is(err, appclient.ErrRefused) || !errors.As(err, &refused) || refused.Reason != v1alpha1.ReasonVerifierRejected {
			t.Errorf("WaitLoaded: %v, want a RefusedError for VerifierRejected", err)
		}
	})
}

func TestWatchConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newClient(t)
	cfg := config(t)
	var seen []string
	done := make(chan error, 1)
	// The config is created only once WatchConfig has reported its state
	// now: created before, the first call would already see it.
	started := make(chan struct{})
	go func() {
		done <- c.WatchConfig(ctx, cfg.Name, func(got *v1alpha1.BpfProgramConfig) (bool, error) {
			if len(seen) == 0 {
				defer close(started)
			}
			if got == nil {
				seen = append(seen, "absent")
				return len(seen) > 1, nil
			}
			seen = append(seen, strings.Join(got.Spec.MapReaderNamespaces, ","))
			return false, nil
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("WatchConfig returned before the config existed: %v", err)
	}
	if _, err := c.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Spec.MapReaderNamespaces = []string{"a", "b"}
	if _, err := c.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, cfg.Name); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Deleting a config the operator holds with finalizers marks it; no
	// operator runs here, so it goes at once.
	want := []string{"absent", "xdp-counter", "a,b", "absent"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("WatchConfig saw (-want +got):\n%s", diff)
	}
}
