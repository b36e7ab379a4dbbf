package runtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
)

// Errors wrapped, with the identity of the thing, by this package. The gRPC
// layer maps them to status codes with errors.Is.
var (
	// ErrNotFound: a program id, program name, map owner, interface, network
	// namespace, tracepoint, function, binary or cgroup does not exist.
	// Every such error also matches one of ErrProgramNotFound and
	// ErrHookNotFound, which say whose fault it is.
	ErrNotFound = errors.New("not found")
	// ErrProgramNotFound: a program the request names does not exist: an
	// unknown program id (Get, Unload) or map owner, or a program name that
	// none of the bytecode's objects has. The request is wrong. It matches
	// ErrNotFound.
	ErrProgramNotFound error = &subclass{msg: "not found", parent: ErrNotFound}
	// ErrHookNotFound: what a program attaches to does not exist on this
	// node: an interface, network namespace, tracepoint, kernel function or
	// symbol, binary, process or cgroup. The request may be right for
	// another node or a later moment. It matches ErrNotFound.
	ErrHookNotFound error = &subclass{msg: "not found", parent: ErrNotFound}
	// ErrMapNotFound: a program has no map of the name a request gives, or
	// a map has no entry with the key it gives. It matches ErrNotFound.
	ErrMapNotFound error = &subclass{msg: "not found", parent: ErrNotFound}
	// ErrInvalid: a request is malformed or does not fit the bytecode (wrong
	// kind, bad attach spec, priority out of range, bad global data override).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the hook cannot take the program (its chain holds as many
	// programs as the dispatcher mode allows, the interface runs another
	// loader's XDP program or its XDP programs in another mode) or the state
	// is in use by another process.
	ErrConflict = errors.New("conflict")
	// ErrPermission: the policy rule that admitted the bytecode does not allow
	// the requested program kind, or a tenant's request (LoadRequest.Tenant)
	// reaches outside the tenant's pods without a grant.
	ErrPermission = errors.New("not allowed")
	// ErrVerifier: the kernel's verifier rejected a program; the error is a
	// *VerifierError carrying the tail of the verifier log.
	ErrVerifier = errors.New("rejected by the verifier")
	// ErrUnsupported: this kernel lacks what the request needs (kprobes,
	// BPF links of some kind, ...).
	ErrUnsupported = errors.New("not supported by this kernel")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("manager closed")
	// ErrStoreTooNew: the state store was written by a newer bpfd, in a
	// schema version this one cannot read. Open changes nothing then: not
	// the store, the pins or the kernel.
	ErrStoreTooNew = errors.New("written by a newer bpfd")
	// ErrIntegrity: an ELF object the state store keeps, to rebuild the
	// chain of an XDP or TC hook after a restart, does not match the
	// SHA-256 it was recorded under (damaged or altered at rest). It is
	// not loaded: the hook keeps the chain it runs, and the program is
	// marked (Program.Fault).
	ErrIntegrity = errors.New("does not match its recorded digest")
)

// verifierTailLines is how many lines of the verifier log a VerifierError
// keeps: enough to show the failing instruction and the registers it read.
const verifierTailLines = 8

// VerifierError reports that the kernel's verifier rejected a program. It
// matches ErrVerifier with errors.Is.
type VerifierError struct {
	// Program is the program's name in its object.
	Program string
	// Tail is the end of the verifier log, without the final statistics line.
	Tail []string
	err  *ebpf.VerifierError
}

func newVerifierError(program string, ve *ebpf.VerifierError) *VerifierError {
	log := ve.Log
	if n := len(log); n > 0 && strings.HasPrefix(log[n-1], "processed ") {
		log = log[:n-1]
	}
	for len(log) > 0 && strings.TrimSpace(log[len(log)-1]) == "" {
		log = log[:len(log)-1]
	}
	if len(log) > verifierTailLines {
		log = log[len(log)-verifierTailLines:]
	}
	tail := make([]string, len(log))
	for i, l := range log {
		tail[i] = strings.TrimRight(l, " \t")
	}
	return &VerifierError{Program: program, Tail: tail, err: ve}
}

// Error returns a first line naming the program and the kernel's reason,
// followed by the verifier log's tail, one indented line each.
func (e *VerifierError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "program %s: %s (%v)", e.Program, ErrVerifier, e.err.Cause)
	if len(e.Tail) > 0 {
		b.WriteString("; verifier log tail:")
		for _, l := range e.Tail {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns ErrVerifier and the underlying *ebpf.VerifierError.
func (e *VerifierError) Unwrap() []error { return []error{ErrVerifier, e.err} }

// classified gives err one of this package's sentinels without changing its
// message, for kernel and library errors that already read well.
type classified struct {
	err   error
	class error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }

// classify returns err marked with class, unless err already matches it.
func classify(err, class error) error {
	if err == nil || errors.Is(err, class) {
		return err
	}
	return &classified{err: err, class: class}
}

// subclass is a sentinel that reads like its parent and matches it with
// errors.Is, so that a finer class keeps the messages of the coarse one.
type subclass struct {
	msg    string
	parent error
}

func (s *subclass) Error() string { return s.msg }
func (s *subclass) Unwrap() error { return s.parent }
