package localregistry

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestStartWithoutTheBinaryFails(t *testing.T) {
	_, err := Start(filepath.Join(t.TempDir(), "no-registry"), t.TempDir(), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "start registry: ") {
		t.Fatalf("Start = %v, want a start registry error", err)
	}
}
