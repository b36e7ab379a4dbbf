package dispatcher

import "github.com/bpfd-dev/bpfd/pkg/runtime/internal/netnsutil"

// The dispatcher works in the hook's network namespace through these.
var (
	inNetns       = netnsutil.Do
	netlinkHandle = netnsutil.NetlinkHandle
)
