//go:build !linux

package maps

import (
	"errors"
	"fmt"
)

func statVolume(string) (bool, error) {
	return false, fmt.Errorf("%w: %w", ErrNotVolume, errors.ErrUnsupported)
}

func isEPERM(error) bool { return false }

func writeRefused(error) bool { return false }

func unprivilegedHint() string { return "" }

func permissionHint(string) string { return "permission denied" }
