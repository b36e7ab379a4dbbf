package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// socketMode is the API socket's mode: its owner (root) and group.
const socketMode = 0o660

// listenSocket creates the API's unix socket at path, mode 0660, owned by
// group when that group exists. A socket left by a bpfd that died is
// replaced; one another process serves is not.
func listenSocket(path, group string, log *slog.Logger) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("socket %s: a %s is in the way", path, fileKind(st.Mode()))
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another process is serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket %s: remove stale socket: %w", path, err)
		}
		log.Info("removed a stale socket", "path", path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	fail := func(err error) (*net.UnixListener, error) {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		return fail(err)
	}
	if group != "" {
		gid, err := lookupGroup(group)
		var unknown user.UnknownGroupError
		switch {
		case errors.As(err, &unknown), errors.Is(err, fs.ErrNotExist): // no such group, or no /etc/group
			log.Info("socket group does not exist; the socket keeps bpfd's group", "group", group, "path", path)
		case err != nil:
			return fail(fmt.Errorf("group %s: %w", group, err))
		default:
			if err := os.Chown(path, -1, gid); err != nil {
				return fail(err)
			}
		}
	}
	return l, nil
}

// lookupGroup returns the gid of group: a number is a gid as it is (a
// container image need not list the group a pod runs its clients with), a
// name is looked up.
func lookupGroup(group string) (int, error) {
	if gid, err := strconv.ParseUint(group, 10, 31); err == nil {
		return int(gid), nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "file of mode " + m.Type().String()
}
