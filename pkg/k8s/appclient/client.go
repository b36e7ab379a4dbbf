package appclient

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bpfd-dev/bpfd/pkg/k8s/api/v1alpha1"
)

// Client reads and writes BpfProgramConfigs and reads BpfPrograms.
type Client struct {
	c client.WithWatch
}

// New returns a Client over c, whose scheme must hold bpfd's API
// (v1alpha1.AddToScheme).
func New(c client.WithWatch) *Client { return &Client{c: c} }

// NewForConfig returns a Client of the API server cfg names.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	return New(c), nil
}

// Apply creates the config, or makes the config of its name have its spec,
// labels and annotations, and returns what the API server stored. An
// update that meets a concurrent change is retried on the fresh object.
func (c *Client) Apply(ctx context.Context, cfg *v1alpha1.BpfProgramConfig) (*v1alpha1.BpfProgramConfig, error) {
	stored := &v1alpha1.BpfProgramConfig{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := c.c.Get(ctx, client.ObjectKey{Name: cfg.Name}, stored)
		if apierrors.IsNotFound(err) {
			stored = cfg.DeepCopy()
			stored.ResourceVersion = ""
			stored.Status = v1alpha1.BpfProgramConfigStatus{}
			return c.c.Create(ctx, stored)
		}
		if err != nil {
			return err
		}
		stored.Spec = *cfg.Spec.DeepCopy()
		stored.Labels = cfg.Labels
		stored.Annotations = cfg.Annotations
		return c.c.Update(ctx, stored)
	})
	if err != nil {
		return nil, fmt.Errorf("apply config %s: %w", cfg.Name, err)
	}
	return stored, nil
}

// Config returns the config of that name.
func (c *Client) Config(ctx context.Context, name string) (*v1alpha1.BpfProgramConfig, error) {
	cfg := &v1alpha1.BpfProgramConfig{}
	if err := c.c.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// Delete deletes the config; one already gone is fine. Each node's agent
// then unloads its programs, and the config is gone once every node has.
func (c *Client) Delete(ctx context.Context, name string) error {
	err := c.c.Delete(ctx, &v1alpha1.BpfProgramConfig{ObjectMeta: metaName(name)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete config %s: %w", name, err)
	}
	return nil
}
