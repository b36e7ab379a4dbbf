package artifact

import "fmt"

// Limits bound what reading, copying and extracting an artifact may take, so
// that a hostile registry, layout or archive cannot make a reader hold or
// write without end. Each field's zero (or a negative value) means its
// default, the Default* constant of the same name; so the zero Limits is the
// defaults.
//
// A manifest, index, config or blob over its bound, or an artifact over
// TotalSize or Blobs, fails the operation with a *LimitError. A referrer over
// its bounds (ReferrerSize, a blob over BlobSize) or past the referrer counts
// is skipped instead, and reported: anyone who may push to a repository may
// add referrers, and they must not be able to make an artifact uncopyable.
type Limits struct {
	// ManifestSize bounds one manifest or index, in bytes.
	ManifestSize int64
	// ConfigSize bounds one config blob, in bytes.
	ConfigSize int64
	// BlobSize bounds one layer or other blob, in bytes.
	BlobSize int64
	// TotalSize bounds the bytes of an artifact and of what is copied with
	// it (referrers, cosign tags), each distinct manifest and blob counted
	// once.
	TotalSize int64
	// Blobs bounds the distinct manifests, indexes and blobs of an artifact
	// and of what is copied with it.
	Blobs int
	// ReferrerSize bounds one referrer (or cosign-tagged manifest), its
	// manifest and the blobs it references together, in bytes; a larger
	// one is skipped.
	ReferrerSize int64
	// ReferrersPerSubject bounds how many referrers of one subject are
	// fetched and considered; the rest are skipped. Entries the listing
	// gives with a type not asked for (see ReferrerOptions.ArtifactTypes)
	// are skipped without being fetched or counted, so that referrers of
	// other types cannot crowd out those asked for.
	ReferrersPerSubject int
	// Referrers bounds the referrers (and cosign-tagged manifests) copied
	// in all; the rest are skipped.
	Referrers int
	// ReferrerDepth bounds how far referrers of referrers are followed: 1
	// takes the artifact's referrers only, 2 their referrers too.
	ReferrerDepth int
	// ArchiveSize bounds the bytes an oci-archive: extracts.
	ArchiveSize int64
	// ArchiveEntries bounds the entries (files and directories) of an
	// oci-archive:.
	ArchiveEntries int
}

// The defaults of Limits.
const (
	DefaultManifestSize        = 4 << 20
	DefaultConfigSize          = 4 << 20
	DefaultBlobSize            = 1 << 30
	DefaultTotalSize           = 4 << 30
	DefaultBlobs               = 10000
	DefaultReferrerSize        = 64 << 20
	DefaultReferrersPerSubject = 256
	DefaultReferrers           = 1024
	DefaultReferrerDepth       = 3
	DefaultArchiveSize         = 8 << 30
	DefaultArchiveEntries      = 100000
)

// WithDefaults returns l with each zero or negative field set to its
// default.
func (l Limits) WithDefaults() Limits {
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64(&l.ManifestSize, DefaultManifestSize)
	def64(&l.ConfigSize, DefaultConfigSize)
	def64(&l.BlobSize, DefaultBlobSize)
	def64(&l.TotalSize, DefaultTotalSize)
	def(&l.Blobs, DefaultBlobs)
	def64(&l.ReferrerSize, DefaultReferrerSize)
	def(&l.ReferrersPerSubject, DefaultReferrersPerSubject)
	def(&l.Referrers, DefaultReferrers)
	def(&l.ReferrerDepth, DefaultReferrerDepth)
	def64(&l.ArchiveSize, DefaultArchiveSize)
	def(&l.ArchiveEntries, DefaultArchiveEntries)
	return l
}

// LimitError says that content went over one of Limits' bounds. It wraps
// ErrLimit and ErrUnsupported.
type LimitError struct {
	// What names the thing at fault ("manifest sha256:…", "archive
	// entries"); empty when the error is wrapped with its name.
	What string
	// Limit is the field of Limits that bounds it, e.g. "ManifestSize".
	Limit string
	// Value is what the thing has or claims; Max the bound.
	Value, Max int64
}

func (e *LimitError) Error() string {
	unit := ""
	switch e.Limit {
	case "ManifestSize", "ConfigSize", "BlobSize", "TotalSize", "ReferrerSize", "ArchiveSize", "ObjectSize":
		unit = " bytes"
	}
	msg := fmt.Sprintf("%d%s, more than the %d allowed (limit %s): %v", e.Value, unit, e.Max, e.Limit, ErrLimit)
	if e.What == "" {
		return msg
	}
	return e.What + ": " + msg
}

func (e *LimitError) Unwrap() []error { return []error{ErrLimit, ErrUnsupported} }

// checkSize refuses a size over max, or a negative one, naming what.
func checkSize(what, limit string, size, max int64) error {
	if size < 0 {
		return fmt.Errorf("%s: %w: negative size %d", what, ErrUnsupported, size)
	}
	if size > max {
		return &LimitError{What: what, Limit: limit, Value: size, Max: max}
	}
	return nil
}
