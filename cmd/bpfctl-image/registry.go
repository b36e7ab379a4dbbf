package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
)

// debugFlag logs every registry request and other details to stderr.
var debugFlag = &cli.BoolFlag{
	Name:    "debug",
	Usage:   "log registry requests (method, URL, status, time; never credentials) and other details to stderr",
	EnvVars: []string{"BPFCTL_IMAGE_DEBUG"},
}

// connectFlags configure how registries are reached.
var connectFlags = []cli.Flag{
	&cli.BoolFlag{
		Name:    "plain-http",
		Usage:   "talk plain HTTP to registries (loopback registries always are)",
		EnvVars: []string{"BPFCTL_IMAGE_PLAIN_HTTP"},
	},
	&cli.BoolFlag{
		Name:    "insecure",
		Usage:   "accept any TLS certificate from registries (for test registries; prefer --ca-file)",
		EnvVars: []string{"BPFCTL_IMAGE_INSECURE"},
	},
	&cli.StringFlag{
		Name:    "ca-file",
		Usage:   "PEM `FILE` of certificate authorities to trust for registries, besides the system's",
		EnvVars: []string{"BPFCTL_IMAGE_CA_FILE"},
	},
}

// registryFlags configure access to registries: how they are reached, the
// credentials, --debug.
var registryFlags = flags(connectFlags, []cli.Flag{
	&cli.StringFlag{
		Name:    "registry-config",
		Usage:   "Docker `config.json` with registry credentials and credential helpers; it must exist (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)",
		EnvVars: []string{"BPFCTL_IMAGE_REGISTRY_CONFIG"},
	},
	debugFlag,
})

// open opens the registry repository, layout or archive ref names, with the
// registry flags; create makes a missing layout or archive.
func open(c *cli.Context, ref artifact.Reference, create bool) (*artifact.Target, error) {
	opts, err := openOptions(c, create)
	if err != nil {
		return nil, err
	}
	return artifact.Open(c.Context, ref, opts)
}

// openOptions returns the options for opening a reference, from the registry
// flags.
func openOptions(c *cli.Context, create bool) (artifact.OpenOptions, error) {
	opts := artifact.OpenOptions{Create: create, PlainHTTP: c.Bool("plain-http")}
	if path := c.String("registry-config"); path != "" {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return opts, cliutil.Usagef("--registry-config %s: no such file", path)
			}
			return opts, fmt.Errorf("--registry-config: %w", err)
		}
		opts.CredentialsFile = path
	}
	client, err := httpClient(c)
	if err != nil {
		return opts, err
	}
	opts.HTTPClient = client
	return opts, nil
}

// httpClient returns the HTTP client for registries that the TLS and debug
// flags ask for.
func httpClient(c *cli.Context) (*http.Client, error) {
	tlsConfig, err := registryTLS(c)
	if err != nil {
		return nil, err
	}
	client := artifact.NewHTTPClient(artifact.HTTPClientOptions{TLSConfig: tlsConfig})
	if debugging(c) {
		client.Transport = &debugTransport{base: client.Transport, log: debugLogger(c)}
	}
	return client, nil
}

// registryTLS returns the TLS configuration --insecure and --ca-file ask
// for, or nil for the defaults.
func registryTLS(c *cli.Context) (*tls.Config, error) {
	insecure, caFile := c.Bool("insecure"), c.String("ca-file")
	if !insecure && caFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} // #nosec G402 -- asked for with --insecure
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// debugging reports whether --debug was given, before the command or after.
func debugging(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if x.Bool(debugFlag.Name) {
			return true
		}
	}
	return false
}

// debugLogger returns the logger of --debug, on stderr.
func debugLogger(c *cli.Context) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// debugTransport logs each request's method, URL, status and duration.
// Headers, which carry credentials and tokens, are never logged.
type debugTransport struct {
	base http.RoundTripper
	log  *slog.Logger
}

func (t *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	u := *req.URL
	u.User, u.RawQuery = nil, redactQuery(u.RawQuery)
	if err != nil {
		t.log.Debug("registry request failed", "method", req.Method, "url", u.String(), "duration", time.Since(start).Round(time.Millisecond), "error", err)
		return nil, err
	}
	t.log.Debug("registry request", "method", req.Method, "url", u.String(), "status", resp.StatusCode, "duration", time.Since(start).Round(time.Millisecond))
	return resp, nil
}

// redactQuery drops query strings that may hold tokens (upload URLs carry
// opaque state; token endpoints carry scopes, kept).
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	return "…"
}
