package peercred_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bpfd-dev/bpfd/internal/peercred"
)

// TestFromContext serves on a unix socket and checks that a handler sees
// this process's uid, gid, pid and supplementary groups.
func TestFromContext(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan peercred.Cred, 1)
	srv := grpc.NewServer(grpc.Creds(peercred.TransportCredentials()),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			c, err := peercred.FromContext(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- c
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	want := peercred.Cred{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), PID: int32(os.Getpid())}
	for _, g := range groups {
		want.Groups = append(want.Groups, uint32(g))
	}
	c := <-got
	slices.Sort(c.Groups)
	slices.Sort(want.Groups)
	if diff := cmp.Diff(want, c, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	if !c.InGroup([]uint32{c.GID}) || c.InGroup([]uint32{4242424}) {
		t.Errorf("InGroup of %+v", c)
	}
}

func TestFromContextWithout(t *testing.T) {
	if _, err := peercred.FromContext(context.Background()); err == nil {
		t.Error("credentials from a context without a peer")
	}
}
