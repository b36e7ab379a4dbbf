package runtime

import (
	"testing"
	"time"
)

// TestHookLocks: an operation on a hook waits for the one holding it;
// operations on other hooks go ahead; operations locking the same hooks in
// any order do not deadlock.
func TestHookLocks(t *testing.T) {
	var table hookTable
	_, unlockA := table.lock("xdp eth0")

	done := func(keys ...string) <-chan struct{} {
		c := make(chan struct{})
		go func() {
			_, unlock := table.lock(keys...)
			unlock()
			close(c)
		}()
		return c
	}
	select {
	case <-done("tc eth0 ingress"):
	case <-time.After(5 * time.Second):
		t.Fatal("an operation on another hook waited for xdp eth0")
	}
	same := done("tc eth1 ingress", "xdp eth0")
	select {
	case <-same:
		t.Fatal("an operation on xdp eth0 ran while another held it")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	select {
	case <-same:
	case <-time.After(5 * time.Second):
		t.Fatal("an operation on xdp eth0 still waits after the hook was released")
	}

	for range 100 {
		ab, ba := done("a", "b"), done("b", "a", "b")
		for _, c := range []<-chan struct{}{ab, ba} {
			select {
			case <-c:
			case <-time.After(5 * time.Second):
				t.Fatal("operations locking hooks a and b in different orders deadlocked")
			}
		}
	}
}
