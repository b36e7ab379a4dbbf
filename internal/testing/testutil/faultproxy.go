package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// FaultProxy is an HTTP reverse proxy on a loopback port in front of a
// registry, for tests of what a client does when the registry misbehaves:
// it passes requests through unchanged unless a Fault says to delay, stall,
// replace or cut a response. Clients use Host where they would use the
// registry's.
type FaultProxy struct {
	// Host is "127.0.0.1:PORT", the proxy's address.
	Host string

	transport *http.Transport

	mu       sync.Mutex
	upstream *url.URL
	faults   func(*http.Request) Fault
	ln       net.Listener
	srv      *http.Server
	stop     chan struct{} // closed by Down: stalled responses end
}

// Fault is what the proxy does to one response. The zero value passes it
// through.
type Fault struct {
	// Delay holds the response back for this long.
	Delay time.Duration
	// Body, if set, replaces the response's body; Content-Length follows it.
	Body []byte
	// After counts body bytes: once After bytes have gone out, Then is
	// called (e.g. to kill the registry), and the response stalls if Stall
	// is set.
	After int64
	Then  func()
	// Stall stops the response, after the header and After bytes of the
	// body (with After 0, before the header), until the client gives up or
	// the proxy goes down.
	Stall bool
	// Header, if set, replaces these response headers (e.g. a
	// Content-Type that lies about the body).
	Header map[string]string
}

// StartFaultProxy starts a proxy in front of the registry at upstream
// ("127.0.0.1:PORT"); it is stopped at the end of the test.
func StartFaultProxy(tb testing.TB, upstream string) *FaultProxy {
	tb.Helper()
	p := &FaultProxy{
		faults:    func(*http.Request) Fault { return Fault{} },
		transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	p.SetUpstream(upstream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.Host = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.Down)
	return p
}

// SetUpstream points the proxy at another registry.
func (p *FaultProxy) SetUpstream(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = &url.URL{Scheme: "http", Host: host}
}

// SetFaults makes fn decide the fault of each response from then on; nil
// passes everything through.
func (p *FaultProxy) SetFaults(fn func(*http.Request) Fault) {
	if fn == nil {
		fn = func(*http.Request) Fault { return Fault{} }
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = fn
}

// Down closes the proxy's port, as a registry that went away would be:
// connections are refused, responses under way are cut.
func (p *FaultProxy) Down() {
	p.mu.Lock()
	srv, stop := p.srv, p.stop
	p.srv, p.stop = nil, nil
	p.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	srv.Close()
	p.transport.CloseIdleConnections()
}

// Up opens the proxy's port again after Down, at the same address.
func (p *FaultProxy) Up(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", p.Host)
	if err != nil {
		tb.Fatalf("proxy %s: %v", p.Host, err)
	}
	p.serve(ln)
}

func (p *FaultProxy) serve(ln net.Listener) {
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			r.SetURL(p.upstream)
			p.mu.Unlock()
			r.Out.Host = r.In.Host
		},
		Transport:      p.transport,
		ModifyResponse: p.modify,
		// An upstream that is gone: cut the connection, as a dead
		// registry's would be.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, herr := hj.Hijack(); herr == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
		// Send what passes at once, so that a stall comes where it says.
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.ln, p.srv, p.stop = ln, srv, make(chan struct{})
	p.mu.Unlock()
	go srv.Serve(ln)
}

func (p *FaultProxy) modify(resp *http.Response) error {
	p.mu.Lock()
	f, stop := p.faults(resp.Request), p.stop
	p.mu.Unlock()
	ctx := resp.Request.Context()
	if f.Delay > 0 {
		if err := sleep(ctx, stop, f.Delay); err != nil {
			return err
		}
	}
	if f.Body != nil {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(f.Body))
		resp.ContentLength = int64(len(f.Body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(f.Body)))
	}
	for k, v := range f.Header {
		resp.Header.Set(k, v)
	}
	if f.Then != nil || f.Stall {
		resp.Body = &faultBody{ReadCloser: resp.Body, left: f.After, then: f.Then, stall: f.Stall, ctx: ctx, stop: stop}
	}
	return nil
}

// errProxyDown ends a stalled response when the proxy goes down.
var errProxyDown = errors.New("fault proxy down")

func sleep(ctx context.Context, stop chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return errProxyDown
	}
}

// faultBody passes left bytes through, then calls then and, with stall,
// blocks until the client goes or the proxy goes down.
type faultBody struct {
	io.ReadCloser
	left  int64
	then  func()
	stall bool
	ctx   context.Context
	stop  chan struct{}
}

func (b *faultBody) Read(buf []byte) (int, error) {
	if b.left > 0 {
		if int64(len(buf)) > b.left {
			buf = buf[:b.left]
		}
		n, err := b.ReadCloser.Read(buf)
		b.left -= int64(n)
		return n, err
	}
	if b.then != nil {
		then := b.then
		b.then = nil
		then()
	}
	if b.stall {
		select {
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		case <-b.stop:
			return 0, errProxyDown
		}
	}
	return b.ReadCloser.Read(buf)
}

// CloseIdleConnections closes the proxy's idle connections to the
// registry.
func (p *FaultProxy) CloseIdleConnections() { p.transport.CloseIdleConnections() }
