package peercred

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Cred is what the kernel says of a client process.
type Cred struct {
	UID uint32
	// GID is the primary group; Groups the supplementary ones.
	GID    uint32
	PID    int32
	Groups []uint32
}

// InGroup reports whether the client's primary or a supplementary group is
// one of gids.
func (c Cred) InGroup(gids []uint32) bool {
	if slices.Contains(gids, c.GID) {
		return true
	}
	for _, g := range c.Groups {
		if slices.Contains(gids, g) {
			return true
		}
	}
	return false
}

// ErrNoCredentials: a request whose connection was not made through
// TransportCredentials.
var ErrNoCredentials = errors.New("no peer credentials")

// TransportCredentials returns gRPC server credentials for a unix socket:
// no encryption, but each connection's peer credentials are read at the
// handshake and handed to the handlers (see FromContext). A connection
// that is not a unix socket's is refused.
func TransportCredentials() credentials.TransportCredentials { return transport{} }

// FromContext returns the credentials of the client of a request served
// with TransportCredentials.
func FromContext(ctx context.Context) (Cred, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Cred{}, fmt.Errorf("no peer: %w", ErrNoCredentials)
	}
	info, ok := p.AuthInfo.(authInfo)
	if !ok {
		return Cred{}, ErrNoCredentials
	}
	return info.cred, nil
}

type transport struct{}

var _ credentials.TransportCredentials = transport{}

// authInfo is the AuthInfo of a connection.
type authInfo struct {
	credentials.CommonAuthInfo
	cred Cred
}

func (authInfo) AuthType() string { return "peercred" }

func (transport) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, fmt.Errorf("peer credentials: %T is not a unix socket connection", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		ucred    *unix.Ucred
		groups   []uint32
		credErr  error
		groupErr error
	)
	if err := raw.Control(func(fd uintptr) {
		ucred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		groups, groupErr = peerGroups(int(fd))
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if err := errors.Join(credErr, groupErr); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	info := authInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		cred:           Cred{UID: ucred.Uid, GID: ucred.Gid, PID: ucred.Pid, Groups: groups},
	}
	return conn, info, nil
}

// maxGroups is the kernel's NGROUPS_MAX.
const maxGroups = 65536

// peerGroups reads the peer's supplementary groups (SO_PEERGROUPS). The
// kernel answers ERANGE with the size it needs when the buffer is short.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for range 2 {
		size := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == unix.ERANGE && size/4 > uint32(len(buf)) && size/4 <= maxGroups:
			buf = make([]uint32, size/4)
			continue
		case errno != 0:
			return nil, fmt.Errorf("supplementary groups: %w", errno)
		}
		return slices.Clone(buf[:size/4]), nil
	}
	return nil, fmt.Errorf("supplementary groups: %w", unix.ERANGE)
}

func (transport) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, authInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (transport) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (t transport) Clone() credentials.TransportCredentials { return t }

func (transport) OverrideServerName(string) error { return nil }
