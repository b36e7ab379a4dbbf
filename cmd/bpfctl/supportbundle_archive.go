package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// bundleRoot is the directory every file of a support bundle is under.
const bundleRoot = "bpfd-support/"

// bundleIndex is index.json, the first file of a support bundle: what was
// collected, from where, and what was cut, redacted or failed.
type bundleIndex struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Created    time.Time    `json:"created"`
	Host       string       `json:"host"`
	MaxBytes   int64        `json:"maxBytes"`
	Files      []bundleFile `json:"files"`
}

// bundleFile is one collected item in the index. A failed item has no file
// in the archive, only its error here.
type bundleFile struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Bytes  int    `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Truncated: the item was larger than its share of the bundle's
	// bound; logs keep their end, other files their start.
	Truncated bool `json:"truncated,omitempty"`
	// Redactions counts the secrets removed from the item.
	Redactions int    `json:"redactions,omitempty"`
	Error      string `json:"error,omitempty"`
}

// bundle collects items within a bound on their total size.
type bundle struct {
	index    bundleIndex
	contents [][]byte // of index.Files, nil for a failed item
	left     int64
}

// bundleOverhead is what the bound keeps back for the index, tar headers
// and compression: the archive's size stays within maxBytes.
const bundleOverhead = 128 << 10

func newBundle(host string, maxBytes int64, now time.Time) *bundle {
	return &bundle{
		index: bundleIndex{APIVersion: jsonAPIVersion, Kind: "SupportBundle", Created: now.UTC(), Host: host, MaxBytes: maxBytes},
		left:  maxBytes - bundleOverhead,
	}
}

// add records an item: b (redacted, then cut to what the bound has left, at
// most limit; the end is kept when tail), or err.
func (b *bundle) add(name, source string, content []byte, err error, limit int64, tail bool) {
	f := bundleFile{Name: name, Source: source}
	if err != nil {
		f.Error = err.Error()
		b.index.Files = append(b.index.Files, f)
		b.contents = append(b.contents, nil)
		return
	}
	content, f.Redactions = redact(content)
	if limit > b.left {
		limit = b.left
	}
	if limit < 0 {
		limit = 0
	}
	if int64(len(content)) > limit {
		f.Truncated = true
		if tail {
			content = content[int64(len(content))-limit:]
		} else {
			content = content[:limit]
		}
	}
	b.left -= int64(len(content))
	sum := sha256.Sum256(content)
	f.Bytes, f.SHA256 = len(content), hex.EncodeToString(sum[:])
	b.index.Files = append(b.index.Files, f)
	b.contents = append(b.contents, content)
}

// write writes the bundle as a gzip-compressed tar: index.json first, then
// every item collected.
func (b *bundle) write(w io.Writer) error {
	index, err := json.MarshalIndent(b.index, "", "  ")
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	put := func(name string, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: bundleRoot + name, Mode: 0o644, Size: int64(len(content)), ModTime: b.index.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	if err := put("index.json", append(index, '\n')); err != nil {
		return err
	}
	for i, f := range b.index.Files {
		if b.contents[i] == nil {
			continue
		}
		if err := put(f.Name, b.contents[i]); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
