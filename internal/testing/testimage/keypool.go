package testimage

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Keys are generated once per process and handed out again to later tests:
// generating one encrypts it with scrypt, which takes seconds on the test
// VM's emulated CPU. Within a test each PooledKey returns another key.
var keyPool struct {
	sync.Mutex
	keys []*Key
	used map[testing.TB]int
}

// PooledKey returns a signing key for tb, with its public key file in tb's
// own temporary directory: a key of this process's pool that tb has not
// had yet, generated when the pool has none left.
func PooledKey(tb testing.TB) *Key {
	tb.Helper()
	keyPool.Lock()
	defer keyPool.Unlock()
	if keyPool.used == nil {
		keyPool.used = map[testing.TB]int{}
	}
	i := keyPool.used[tb]
	keyPool.used[tb]++
	if i == len(keyPool.keys) {
		k, err := NewKey(tb.TempDir(), "key")
		if err != nil {
			tb.Fatal(err)
		}
		keyPool.keys = append(keyPool.keys, k)
	}
	k := *keyPool.keys[i]
	k.PubFile = filepath.Join(tb.TempDir(), "key.pub")
	if err := os.WriteFile(k.PubFile, k.Private.Public().PEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return &k
}
