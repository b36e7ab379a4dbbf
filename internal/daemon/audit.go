package daemon

import (
	"context"
	"log/slog"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/bpfd-dev/bpfd/pkg/runtime"
	"github.com/bpfd-dev/bpfd/pkg/verify"
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
	Note      *auditNote
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
	if n := r.Note; n != nil {
		n.mu.Lock()
		if n.digest != "" {
			attrs = append(attrs, slog.String("digest", n.digest))
		}
		if n.decision != "" {
			attrs = append(attrs, slog.String("decision", n.decision))
			if n.reason != "" {
				attrs = append(attrs, slog.String("reason", n.reason))
			}
			attrs = append(attrs, slog.String("rule", n.rule), slog.String("signer", n.signer), slog.String("policy", n.policy))
		}
		n.mu.Unlock()
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

// auditNote collects, during one request, what the Source decided: the
// digest the reference resolved to and the trust policy's verdict. The
// server reads it for the audit line even when the request failed later.
type auditNote struct {
	mu       sync.Mutex
	digest   string
	decision string
	reason   string
	rule     string
	signer   string
	policy   string
}

type noteKey struct{}

// withNote returns ctx carrying a new note.
func withNote(ctx context.Context) (context.Context, *auditNote) {
	n := &auditNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(noteKey{}).(*auditNote)
	return n
}

func noteDigest(ctx context.Context, digest string) {
	if n := noteFrom(ctx); n != nil {
		n.mu.Lock()
		n.digest = digest
		n.mu.Unlock()
	}
}

func noteAdmission(ctx context.Context, report *verify.Report, reason string) {
	n := noteFrom(ctx)
	if n == nil || report == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.decision = string(report.Decision)
	n.reason = reason
	n.rule = report.Rule
	n.policy = report.Policy
	n.signer = ""
	for i, s := range report.Signers() {
		if i > 0 {
			n.signer += ", "
		}
		n.signer += s
	}
}
