package badinput

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// Template expands the templates in the corpus's blobs and messages:
//
//	{{digest NAME}}   the digest of blob NAME ("sha256:<hex>")
//	{{size NAME}}     its size in bytes
//	{{base64 NAME}}   its content, base64
//	{{sign NAME}}     a deterministic ECDSA P-256 signature over it by the
//	                  corpus key, base64 (a legacy cosign signature)
//	{{dsse NAME}}     the same over its DSSE pre-authentication encoding as an
//	                  in-toto statement (a bundle's envelope signature)
//	{{inventedprograms N}}
//	                  N program entries of an artifact config (JSON objects,
//	                  comma separated) for programs no object defines
//	{{VAR}}           the variable VAR
//
// NAME is a blob of the same entry, itself expanded first, or "@name" for
// bytecode/<name>.bpf.o.
type Template struct {
	// Vars are the variables: "dir", "subject.digest", "key.hint", ...
	Vars map[string]string
	// Blob returns the expanded content of a blob.
	Blob func(name string) ([]byte, error)
	// Key signs for sign and dsse; nil makes them fail.
	Key *ecdsa.PrivateKey
}

var templateRE = regexp.MustCompile(`\{\{([a-z0-9.]+)(?: ([^{} ]+))?\}\}`)

// Expand returns text with its templates replaced, or the first error.
func (t *Template) Expand(text []byte) ([]byte, error) {
	var firstErr error
	out := templateRE.ReplaceAllFunc(text, func(m []byte) []byte {
		if firstErr != nil {
			return nil
		}
		sub := templateRE.FindSubmatch(m)
		v, err := t.value(string(sub[1]), string(sub[2]))
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", m, err)
		}
		return v
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// ExpandString is Expand for a string.
func (t *Template) ExpandString(s string) (string, error) {
	b, err := t.Expand([]byte(s))
	return string(b), err
}

func (t *Template) value(fn, arg string) ([]byte, error) {
	if arg == "" {
		v, ok := t.Vars[fn]
		if !ok {
			return nil, errors.New("no such variable")
		}
		return []byte(v), nil
	}
	if fn == "inventedprograms" {
		return inventedPrograms(arg)
	}
	if t.Blob == nil {
		return nil, errors.New("no blobs here")
	}
	data, err := t.Blob(arg)
	if err != nil {
		return nil, err
	}
	switch fn {
	case "digest":
		return []byte(digest.FromBytes(data)), nil
	case "size":
		return strconv.AppendInt(nil, int64(len(data)), 10), nil
	case "base64":
		return []byte(base64.StdEncoding.EncodeToString(data)), nil
	case "sign":
		return t.sign(data)
	case "dsse":
		return t.sign(PAE(InTotoPayloadType, data))
	}
	return nil, fmt.Errorf("unknown function %q", fn)
}

// maxInvented bounds {{inventedprograms N}}.
const maxInvented = 100000

// inventedPrograms returns n program entries of an artifact config, comma
// separated, for programs no object defines: "invented00000"...
func inventedPrograms(n string) ([]byte, error) {
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > maxInvented {
		return nil, fmt.Errorf("want a count from 1 to %d", maxInvented)
	}
	var out []byte
	for i := range count {
		if i > 0 {
			out = append(out, ",\n"...)
		}
		out = fmt.Appendf(out, `{"name": "invented%05d", "section": "xdp", "type": "xdp", "attachType": "xdp", "kinds": ["xdp"], "license": "GPL", "instructions": 2}`, i)
	}
	return out, nil
}

func (t *Template) sign(message []byte) ([]byte, error) {
	if t.Key == nil {
		return nil, errors.New("no signing key")
	}
	sum := sha256.Sum256(message)
	// Deterministic (RFC 6979): the same blob always expands the same.
	sig, err := t.Key.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// InTotoPayloadType is the DSSE payload type of the statements a bundle signs.
const InTotoPayloadType = "application/vnd.in-toto+json"

// PAE is DSSE's pre-authentication encoding of payload: what an envelope's
// signature signs.
func PAE(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// The corpus's signing key, a test key that signs nothing but the corpus:
// the signature surface's trusted key. Entries sign with it through {{sign}}
// and {{dsse}}.
const (
	privateKeyFile = "signature/corpus.key"
	// PublicKeyFile is the public half, cosign.pub style, relative to the
	// corpus directory.
	PublicKeyFile = "signature/corpus.pub"
)

// SigningKey returns the corpus's signing key.
func (c *Corpus) SigningKey() (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, privateKeyFile))
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", privateKeyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", privateKeyFile, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ECDSA key", privateKeyFile, key)
	}
	return ec, nil
}

// PublicKeyPath returns the path of the corpus key's public half.
func (c *Corpus) PublicKeyPath() string { return filepath.Join(c.Dir, PublicKeyFile) }

// keyIDs returns the names of key's public half: the hint a bundle carries
// (the base64 SHA-256 of its DER encoding) and its fingerprint
// ("sha256:<hex>" of the same).
func keyIDs(key *ecdsa.PrivateKey) (hint, fingerprint string, err error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ExpandBlobs expands the templates of the JSON blobs of raw (by name),
// which may refer to each other and to the blobs of fixed, with vars and, if
// key is set, the corpus key's signatures and key.* variables. It returns
// every blob of raw and fixed, expanded. Fuzz targets build their inputs so
// from mutated corpus blobs: a mutation keeps {{digest config.json}}
// pointing at the config, whatever the config became.
func ExpandBlobs(raw, fixed map[string][]byte, vars map[string]string, key *ecdsa.PrivateKey) (map[string][]byte, error) {
	all := map[string]string{}
	for k, v := range vars {
		all[k] = v
	}
	if key != nil {
		hint, fingerprint, err := keyIDs(key)
		if err != nil {
			return nil, err
		}
		all["key.hint"], all["key.fingerprint"] = hint, fingerprint
	}
	out := map[string][]byte{}
	busy := map[string]bool{}
	t := &Template{Vars: all, Key: key}
	t.Blob = func(name string) ([]byte, error) {
		if data, ok := fixed[name]; ok {
			return data, nil
		}
		if data, ok := out[name]; ok {
			return data, nil
		}
		data, ok := raw[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("no blob %s", name)
		case busy[name]:
			return nil, fmt.Errorf("blob %s refers to itself", name)
		case !isBinary(name):
			busy[name] = true
			expanded, err := t.Expand(data)
			busy[name] = false
			if err != nil {
				return nil, err
			}
			data = expanded
		}
		out[name] = data
		return data, nil
	}
	for name := range raw {
		if _, err := t.Blob(name); err != nil {
			return nil, err
		}
	}
	for name, data := range fixed {
		out[name] = data
	}
	return out, nil
}
