package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultStallTimeout is how long a registry may leave a response body
// without sending a byte before the transfer is given up (HTTPClientOptions).
const DefaultStallTimeout = 30 * time.Second

// transferTransport watches response bodies. A body that stops arriving
// for the stall timeout is cut, so that a registry that stops sending in
// the middle of a blob fails the pull instead of holding it until the
// caller gives up (forever, for a caller without a deadline). A body cut
// short by the network (the registry went away) reads as ErrUnreachable,
// a transient failure: without that it would end early and read as content
// that does not match its digest, which callers treat as tampering.
type transferTransport struct {
	base  http.RoundTripper
	stall time.Duration
}

// errStalled cancels a request whose body stopped arriving.
var errStalled = errors.New("response body stalled")

func (t *transferTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	b := &transferBody{body: resp.Body, host: req.URL.Host, ctx: ctx, cancel: cancel, stall: t.stall}
	b.timer = time.AfterFunc(time.Hour, func() { cancel(errStalled) })
	b.timer.Stop()
	resp.Body = b
	return resp, nil
}

// transferBody is a response body whose reads are watched.
type transferBody struct {
	body   io.ReadCloser
	host   string
	ctx    context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration
	timer  *time.Timer
}

func (b *transferBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.stall)
	n, err := b.body.Read(p)
	b.timer.Stop()
	switch {
	case err == nil, err == io.EOF:
		return n, err
	case errors.Is(context.Cause(b.ctx), errStalled):
		return n, fmt.Errorf("%s: %w: sent nothing for %v in the middle of a response", b.host, ErrUnreachable, b.stall)
	case b.ctx.Err() != nil:
		return n, err // the caller gave up: its context says why
	}
	return n, fmt.Errorf("%s: %w: connection lost in the middle of a response: %w", b.host, ErrUnreachable, err)
}

func (b *transferBody) Close() error {
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}
