package artifact

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	"oras.land/oras-go/v2/content"
)

func TestClassify(t *testing.T) {
	blob := "http://127.0.0.1:5000/v2/r/blobs/sha256:00"
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"connection refused", &url.Error{Op: "Get", URL: blob, Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, ErrUnreachable},
		{"closed before an answer", &url.Error{Op: "Get", URL: blob, Err: io.EOF}, ErrUnreachable},
		{"closed in the headers", fmt.Errorf("pull: %w", &url.Error{Op: "Get", URL: blob, Err: io.ErrUnexpectedEOF}), ErrUnreachable},
		{"short body", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ErrDigestMismatch},
		{"other content", content.ErrMismatchedDigest, ErrDigestMismatch},
		{"already classified", fmt.Errorf("x: %w", ErrNotFound), ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); !errors.Is(got, tt.want) {
				t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
