package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// Daemon is the part of the node's bpfd the agent uses. It has the generated
// gRPC client's shape, so bpfdv1.BpfdClient is one. Errors are gRPC status
// errors as the node API documents them (see reasonOf).
type Daemon interface {
	Load(ctx context.Context, in *bpfdv1.LoadRequest, opts ...grpc.CallOption) (*bpfdv1.LoadResponse, error)
	Unload(ctx context.Context, in *bpfdv1.UnloadRequest, opts ...grpc.CallOption) (*bpfdv1.UnloadResponse, error)
	List(ctx context.Context, in *bpfdv1.ListRequest, opts ...grpc.CallOption) (*bpfdv1.ListResponse, error)
	UpdateOwner(ctx context.Context, in *bpfdv1.UpdateOwnerRequest, opts ...grpc.CallOption) (*bpfdv1.UpdateOwnerResponse, error)
	Inventory(ctx context.Context, in *bpfdv1.InventoryRequest, opts ...grpc.CallOption) (*bpfdv1.InventoryResponse, error)
}

var _ Daemon = (bpfdv1.BpfdClient)(nil)

// DaemonClient is a Daemon over a gRPC connection to bpfd's unix socket.
type DaemonClient struct {
	bpfdv1.BpfdClient
	conn *grpc.ClientConn
}

// DialDaemon returns a client of the bpfd serving on the unix socket at path.
// It connects on first use and reconnects as needed, so bpfd may start after
// the agent or restart under it; calls fail with codes.Unavailable meanwhile.
func DialDaemon(path string) (*DaemonClient, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bpfd socket %s: %w", path, err)
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// bpfd is local: reconnect soon after it comes back, however long
		// it was gone.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("bpfd socket %s: %w", path, err)
	}
	return &DaemonClient{BpfdClient: bpfdv1.NewBpfdClient(conn), conn: conn}, nil
}

// Close closes the connection.
func (c *DaemonClient) Close() error { return c.conn.Close() }
