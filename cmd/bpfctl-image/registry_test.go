package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/testutil"
)

// TestRegistryTLSFlags checks --ca-file and --insecure: the configuration
// they give completes a real TLS handshake with a server whose certificate
// the system does not trust, and a CA file that is missing or holds no
// certificate is an error naming it.
func TestRegistryTLSFlags(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, "registry.test")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	handshake := func(cfg *tls.Config) error {
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		cfg.ServerName = "registry.test"
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	cases := map[string]struct {
		args    []string
		wantErr string
		connect bool
	}{
		"defaults":        {args: nil, connect: false},
		"ca file":         {args: []string{"--ca-file", caFile}, connect: true},
		"insecure":        {args: []string{"--insecure"}, connect: true},
		"missing ca file": {args: []string{"--ca-file", dir + "/nope.pem"}, wantErr: "--ca-file: open " + dir + "/nope.pem: no such file or directory"},
		"not a ca file":   {args: []string{"--ca-file", filepath.Join("..", "..", "README.md")}, wantErr: "no PEM certificate in it"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			set := flag.NewFlagSet("x", flag.ContinueOnError)
			for _, f := range registryFlags {
				if err := f.Apply(set); err != nil {
					t.Fatal(err)
				}
			}
			if err := set.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := registryTLS(cli.NewContext(&cli.App{}, set, nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := handshake(cfg); (err == nil) != tc.connect {
				t.Errorf("handshake: %v, want success %t", err, tc.connect)
			}
		})
	}
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestDebug logs registry requests with --debug, before or after the
// command, and never a credential.
func TestDebug(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.WithBasicAuth("ci", "s3cret"))
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", home)
	withStdin(t, "s3cret\n", func() { ok(t, "login", "-u", "ci", "--password-stdin", reg.Host) })
	ref := reg.Host + "/debug/xdp:v1"
	ok(t, "build", "--dest", ref, object("xdp_counter"))
	for _, args := range [][]string{{"--debug", "inspect", ref}, {"inspect", ref, "--debug"}} {
		r := bpfctlImage(t, args...)
		if r.code != cliutil.ExitOK || !strings.Contains(r.stderr, `msg="registry request" method=GET url=http://`+reg.Host+"/v2/debug/xdp/manifests/") || !strings.Contains(r.stderr, "status=200") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "s3cret") || strings.Contains(strings.ToLower(r.stderr), "authorization") || strings.Contains(r.stderr, "Y2k6czNjcmV0") {
			t.Errorf("--debug logged a credential:\n%s", r.stderr)
		}
	}
	if r := bpfctlImage(t, "inspect", ref); r.stderr != "" {
		t.Errorf("without --debug, stderr %q", r.stderr)
	}
}
