package main

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
)

// requestCounter counts the requests a Kubernetes client sends, by verb:
// get, list, watch, create, update, patch, delete, deletecollection, with
// the subresource when there is one ("update status"), and "discovery" for
// the API group and version lookups, "other" for the rest (/version); and the answers other than success, by
// verb and status code ("update status 409"): conflicts, throttling (429).
// Install it with rest.Config.Wrap.
type requestCounter struct {
	mu       sync.Mutex
	counts   map[string]int
	failures map[string]int
}

func newRequestCounter() *requestCounter {
	return &requestCounter{counts: map[string]int{}, failures: map[string]int{}}
}

// wrap is a transport.WrapperFunc.
func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return countingTransport{next: rt, c: c}
}

// snapshot returns the counts of requests and of failed ones so far.
func (c *requestCounter) snapshot() (requests, failures map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts), maps.Clone(c.failures)
}

type countingTransport struct {
	next http.RoundTripper
	c    *requestCounter
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	v := verbOf(req.Method, req.URL.Path, req.URL.Query().Get("watch"))
	t.c.mu.Lock()
	t.c.counts[v]++
	t.c.mu.Unlock()
	resp, err := t.next.RoundTrip(req)
	if resp != nil && resp.StatusCode >= 300 {
		t.c.mu.Lock()
		t.c.failures[fmt.Sprintf("%s %d", v, resp.StatusCode)]++
		t.c.mu.Unlock()
	}
	return resp, err
}

// verbOf names the API request of an HTTP method on a path
// (/api/v1/..., /apis/GROUP/VERSION/..., [namespaces/NS/]RESOURCE[/NAME[/SUB]]).
func verbOf(method, path, watch string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	case parts[0] == "api" || parts[0] == "apis":
		return "discovery"
	default:
		return "other" // /healthz, /version, /openapi/...
	}
	if len(parts) == 0 {
		return "discovery"
	}
	if parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:] // a namespaced resource; "namespaces/NS" alone is a namespace
	}
	named := len(parts) >= 2
	sub := ""
	if len(parts) >= 3 {
		sub = " " + parts[2]
	}
	var verb string
	switch method {
	case http.MethodGet:
		switch {
		case watch == "true" || watch == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(method)
	}
	return verb + sub
}
