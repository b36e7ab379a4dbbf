package operator

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions returns the manager cache settings of an operator deployed
// in namespace: ConfigMaps and DaemonSets of that namespace only, which is
// all its Role allows.
func CacheOptions(namespace string) cache.Options {
	ns := map[string]cache.Config{namespace: {}}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Namespaces: ns},
		&appsv1.DaemonSet{}: {Namespaces: ns},
	}}
}
