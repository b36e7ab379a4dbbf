package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// peerCreds are gRPC transport credentials for a unix socket: no
// encryption, but every connection's peer credentials (SO_PEERCRED: the
// uid, gid and pid of the process that connected) are read at the
// handshake and handed to the handlers as its AuthInfo.
type peerCreds struct{}

var _ credentials.TransportCredentials = peerCreds{}

// peerInfo is the AuthInfo of a connection.
type peerInfo struct {
	credentials.CommonAuthInfo
	runtime.Requester
}

func (peerInfo) AuthType() string { return "peercred" }

func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, fmt.Errorf("peer credentials: %T is not a unix socket connection", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred    *unix.Ucred
		credErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	info := peerInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		Requester:      runtime.Requester{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid},
	}
	return conn, info, nil
}

func (peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c peerCreds) Clone() credentials.TransportCredentials { return c }

func (peerCreds) OverrideServerName(string) error { return nil }

// requester returns the peer credentials of the request's client.
func requester(ctx context.Context) (runtime.Requester, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return runtime.Requester{}, errors.New("no peer")
	}
	info, ok := p.AuthInfo.(peerInfo)
	if !ok {
		return runtime.Requester{}, errors.New("no peer credentials")
	}
	return info.Requester, nil
}

// access decides which clients may use the API: root always; when allowed
// uids or gids are configured, only those; otherwise anyone who can open the
// socket (its mode and group are the first gate).
type access struct {
	uids []uint32
	gids []uint32
}

func (a access) allows(r runtime.Requester) bool {
	if r.UID == 0 || len(a.uids) == 0 && len(a.gids) == 0 {
		return true
	}
	return slices.Contains(a.uids, r.UID) || slices.Contains(a.gids, r.GID)
}
