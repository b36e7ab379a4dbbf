package appclient

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// WaitLoaded waits until node's BpfProgram of the config reports the
// config's current generation loaded, and returns it: its programs' maps
// are then pinned on the node and csi.bpfd.io publishes them. It returns
// an error matching ErrRefused (a *RefusedError) as soon as the node
// refuses the current generation for a reason retried only at the agent's
// resync; when ctx ends first, its error says what the node last reported.
func (c *Client) WaitLoaded(ctx context.Context, config, node string) (*v1alpha1.BpfProgram, error) {
	name := v1alpha1.BpfProgramName(config, node)
	last := "no BpfProgram yet"
	check := func(bp *v1alpha1.BpfProgram) (bool, error) {
		cfg, err := c.Config(ctx, config)
		if err != nil {
			return false, err
		}
		s := statusOf(cfg, bp)
		last = fmt.Sprintf("generation %d of %d, Ready reason %q: %s", bp.Status.ObservedConfigGeneration, cfg.Generation, s.Reason, s.Message)
		switch {
		case !s.Current:
			return false, nil
		case s.Ready && s.Reason == v1alpha1.ReasonLoaded:
			return true, nil
		case refusal(s.Reason):
			return false, &RefusedError{Config: config, Node: node, Reason: s.Reason, Message: s.Message}
		}
		return false, nil
	}

	sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)}
	list := &v1alpha1.BpfProgramList{}
	if err := c.c.List(ctx, list, sel); err != nil {
		return nil, fmt.Errorf("BpfProgram %s: %w", name, err)
	}
	if len(list.Items) == 1 {
		bp := &list.Items[0]
		if done, err := check(bp); done || err != nil {
			return bp, err
		}
	}
	var loaded *v1alpha1.BpfProgram
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		return c.c.Watch(ctx, &v1alpha1.BpfProgramList{}, sel, &client.ListOptions{Raw: &opts})
	}}
	_, err := watchtools.Until(ctx, list.ResourceVersion, lw, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Error:
			return false, apierrors.FromObject(ev.Object)
		case watch.Deleted:
			last = "BpfProgram deleted"
			return false, nil
		}
		bp, ok := ev.Object.(*v1alpha1.BpfProgram)
		if !ok {
			return false, fmt.Errorf("watch of %s: a %T", name, ev.Object)
		}
		done, err := check(bp)
		if done {
			loaded = bp
		}
		return done, err
	})
	if err == nil {
		return loaded, nil
	}
	if errors.Is(err, ErrRefused) {
		return nil, err
	}
	if ctx.Err() != nil || errors.Is(err, watchtools.ErrWatchClosed) {
		return nil, fmt.Errorf("config %s on node %s not loaded (%s): %w", config, node, last, errors.Join(ctx.Err(), err))
	}
	return nil, fmt.Errorf("wait for BpfProgram %s: %w", name, err)
}

// WatchConfig calls fn with the config each time it changes, starting with
// its state now (nil while it does not exist, or once it is deleted),
// until fn returns true or an error, or ctx ends.
func (c *Client) WatchConfig(ctx context.Context, name string, fn func(*v1alpha1.BpfProgramConfig) (done bool, err error)) error {
	sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)}
	list := &v1alpha1.BpfProgramConfigList{}
	if err := c.c.List(ctx, list, sel); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	var now *v1alpha1.BpfProgramConfig
	if len(list.Items) == 1 {
		now = &list.Items[0]
	}
	if done, err := fn(now); done || err != nil {
		return err
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		return c.c.Watch(ctx, &v1alpha1.BpfProgramConfigList{}, sel, &client.ListOptions{Raw: &opts})
	}}
	_, err := watchtools.Until(ctx, list.ResourceVersion, lw, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Error:
			return false, apierrors.FromObject(ev.Object)
		case watch.Deleted:
			return fn(nil)
		}
		cfg, ok := ev.Object.(*v1alpha1.BpfProgramConfig)
		if !ok {
			return false, fmt.Errorf("watch of config %s: a %T", name, ev.Object)
		}
		return fn(cfg)
	})
	if err != nil {
		return fmt.Errorf("watch config %s: %w", name, err)
	}
	return nil
}
