package artifact

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content/memory"

	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestTransferFaults fetches an artifact from a real registry through a
// proxy that cuts or stalls the object's blob: both fail with
// ErrUnreachable, a transient failure naming the registry, not with
// ErrDigestMismatch; a stalled blob fails after the stall timeout, not
// when the caller gives up.
func TestTransferFaults(t *testing.T) {
	ctx := context.Background()
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartFaultProxy(t, reg.Host)
	proxy.Down() // each case brings it up
	object := example(t, "packet_counters")
	staged := memory.New()
	root, err := Build(ctx, staged, []ObjectFile{object}, BuildOptions{Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ref := mustReference(t, reg.Host+"/bytecode/transfer:v1")
	if _, err := Copy(ctx, staged, root, mustOpen(t, ref, OpenOptions{}), ref.Tag, CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	isLayer := func(r *http.Request) bool {
		return r.Method == http.MethodGet && r.URL.Path == "/v2/bytecode/transfer/blobs/"+digest.FromBytes(object.Data).String()
	}

	cases := map[string]struct {
		fault testutil.Fault
		want  string
	}{
		"cut":     {testutil.Fault{After: 100, Then: proxy.Down}, "connection lost in the middle of a response"},
		"stalled": {testutil.Fault{After: 100, Stall: true}, "sent nothing for 500ms in the middle of a response"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			proxy.Up(t)
			defer proxy.Down()
			proxy.SetFaults(func(r *http.Request) testutil.Fault {
				if isLayer(r) {
					return tc.fault
				}
				return testutil.Fault{}
			})
			client := NewHTTPClient(HTTPClientOptions{StallTimeout: 500 * time.Millisecond})
			defer client.CloseIdleConnections()
			target := mustOpen(t, mustReference(t, proxy.Host+"/bytecode/transfer:v1"), OpenOptions{HTTPClient: client})
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			desc, err := target.ResolveReference(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Fetch(ctx, target, desc, HostPlatform())
			switch {
			case !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrDigestMismatch):
				t.Fatalf("Fetch: %v; want ErrUnreachable only", err)
			case ctx.Err() != nil:
				t.Fatalf("Fetch returned when the caller's deadline passed: %v", err)
			}
			for _, part := range []string{proxy.Host, tc.want} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}
