package daemon

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/internal/supplychain"
	"github.com/bpfd-dev/bpfd/pkg/runtime"
)

// The audit log has one line per API request (health checks aside),
// written whether the request succeeded, failed or was refused:
//
//	time=… level=INFO msg=audit action=load result=ok uid=0 gid=0 pid=4242
//	  reference=oci:/srv/xdp:v1 digest=sha256:… decision=allow rule=net
//	  signer=sha256:… policy=sha256:… programs=xdp_counter ids=7
//
// action is load, unload, pull, list or get; result ok or error (with error and code,
// the gRPC status code); decision, rule, signer and policy are the trust
// policy's verdict when verification ran (decision deny with reason for a
// denial). An unload names the programs' ids, names and artifacts
// (REFERENCE@DIGEST each).

// auditor writes audit lines.
type auditor struct {
	log *slog.Logger
}

// auditRecord is what one audit line says.
type auditRecord struct {
	Action    string
	Peer      runtime.Requester
	Reference string
	Programs  []string
	IDs       []runtime.ID
	Artifacts []string
	Err       error
	// Supply is what the supply chain found and decided; nil when it was
	// not asked.
	Supply *supplychain.Result
	// Rejudge is a loaded program's judgement under the policy in force;
	// nil for API requests.
	Rejudge *rejudgeInfo
	// Cache is what a cache request found or removed; nil for others.
	Cache *cacheInfo
}

// rejudgeInfo is what a rejudge line says besides the program.
type rejudgeInfo struct {
	// Trigger is start, reload or load.
	Trigger   string
	Digest    string
	Admission admission
	// Outcome is, under revocation: unload, what became of a program not
	// admitted: unloaded, gone, unload-failed; empty otherwise.
	Outcome string
}

// cacheInfo is what a cache line says.
type cacheInfo struct {
	// Entries is how many artifacts were listed, or removed.
	Entries int
	// Freed and Size are bytes removed and left (prune).
	Freed, Size int64
}

func (a *auditor) write(ctx context.Context, r auditRecord) {
	attrs := []slog.Attr{
		slog.String("action", r.Action),
		slog.String("result", "ok"),
		slog.Uint64("uid", uint64(r.Peer.UID)),
		slog.Uint64("gid", uint64(r.Peer.GID)),
		slog.Int64("pid", int64(r.Peer.PID)),
	}
	if r.Err != nil {
		attrs[1] = slog.String("result", "error")
	}
	if r.Reference != "" {
		attrs = append(attrs, slog.String("reference", r.Reference))
	}
	if res := r.Supply; res != nil {
		if res.Digest != "" {
			attrs = append(attrs, slog.String("digest", res.Digest.String()))
		}
		if v := res.Verdict; v != nil {
			attrs = append(attrs, slog.String("decision", string(v.Decision)))
			if v.Reason != "" {
				attrs = append(attrs, slog.String("reason", string(v.Reason)))
			}
			attrs = append(attrs, slog.String("rule", v.Rule), slog.String("signer", strings.Join(v.Signers, ", ")), slog.String("policy", v.Policy))
		}
	}
	if j := r.Rejudge; j != nil {
		a := j.Admission
		attrs = append(attrs, slog.String("trigger", j.Trigger), slog.String("digest", j.Digest), slog.Bool("admitted", a.Admitted),
			slog.String("decision", string(a.Decision)), slog.String("rule", a.Rule), slog.String("policy", a.Policy))
		if a.Reason != "" {
			attrs = append(attrs, slog.String("reason", a.Reason), slog.String("detail", a.Detail))
		}
		if j.Outcome != "" {
			attrs = append(attrs, slog.String("outcome", j.Outcome))
		}
	}
	if c := r.Cache; c != nil {
		attrs = append(attrs, slog.Int("entries", c.Entries))
		if r.Action == "prune-cache" {
			attrs = append(attrs, slog.Int64("freed", c.Freed), slog.Int64("size", c.Size))
		}
	}
	if len(r.Artifacts) > 0 {
		attrs = append(attrs, slog.Any("artifacts", r.Artifacts))
	}
	if len(r.Programs) > 0 {
		attrs = append(attrs, slog.Any("programs", r.Programs))
	}
	if len(r.IDs) > 0 {
		ids := make([]uint64, len(r.IDs))
		for i, id := range r.IDs {
			ids[i] = uint64(id)
		}
		attrs = append(attrs, slog.Any("ids", ids))
	}
	if r.Err != nil {
		code, msg := statusCode(r.Err), r.Err.Error()
		if st, ok := status.FromError(r.Err); ok { // refused before a handler ran, or a read's answer
			code, msg = st.Code(), st.Message()
		}
		attrs = append(attrs, slog.String("code", code.String()), slog.String("error", msg))
	}
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "audit", attrs...)
}
