package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bpfd-dev/bpfd/internal/grpccodec"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// connection is a client of the daemon at --socket.
type connection struct {
	bpfdv1.BpfdClient
	socket string
	conn   *grpc.ClientConn
	cancel context.CancelFunc // ends the context of its requests
}

// connect makes a client for the daemon on --socket and the context of its
// requests (--timeout), which Close ends. It does not dial yet: the first
// request does, and reports an unreachable daemon.
func connect(c *cli.Context) (*connection, context.Context, error) {
	socket := c.String("socket")
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.ForceCodecV2(grpccodec.Codec())))
	if err != nil {
		return nil, nil, fmt.Errorf("socket %s: %w", socket, err)
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	return &connection{BpfdClient: bpfdv1.NewBpfdClient(conn), socket: socket, conn: conn, cancel: cancel}, ctx, nil
}

func (c *connection) Close() error {
	c.cancel()
	return c.conn.Close()
}
