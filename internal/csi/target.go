package csi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// checkTarget checks that target is where the kubelet mounts a CSI volume
// of a pod, <podsDir>/<pod uid>/volumes/kubernetes.io~csi/<volume>/mount,
// for the pod of uid podUID (any pod when podUID is empty), and that no
// directory on the way is a symbolic link.
func checkTarget(podsDir, target, podUID string) error {
	rel, err := filepath.Rel(podsDir, target)
	parts := strings.Split(rel, string(filepath.Separator))
	if err != nil || len(parts) != 5 || parts[1] != "volumes" || parts[2] != "kubernetes.io~csi" || parts[4] != "mount" {
		return fmt.Errorf("%w: target_path %s is not <pod uid>/volumes/kubernetes.io~csi/<volume>/mount under the kubelet's pods directory %s", ErrInvalid, target, podsDir)
	}
	if !podUIDSyntax.MatchString(parts[0]) {
		return fmt.Errorf("%w: target_path %s: %q is not a pod uid", ErrInvalid, target, parts[0])
	}
	if podUID != "" && parts[0] != podUID {
		return fmt.Errorf("%w: target_path %s is a volume of pod %s, not of pod %s named by the pod info", ErrInvalid, target, parts[0], podUID)
	}
	if len(validation.IsDNS1123Subdomain(parts[3])) > 0 {
		return fmt.Errorf("%w: target_path %s: %q is not a volume name", ErrInvalid, target, parts[3])
	}
	parent := filepath.Dir(target)
	real, err := filepath.EvalSymlinks(parent)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: target_path %s: its parent does not exist (the kubelet makes it)", ErrInvalid, target)
	case err != nil:
		return fmt.Errorf("target_path %s: %w", target, err)
	case real != parent:
		return fmt.Errorf("%w: target_path %s: its parent leads through a symbolic link to %s", ErrInvalid, target, real)
	}
	if st, err := os.Lstat(target); err == nil && !st.IsDir() {
		return fmt.Errorf("%w: target_path %s is a %s, not a directory", ErrPrecondition, target, st.Mode().Type())
	}
	return nil
}
