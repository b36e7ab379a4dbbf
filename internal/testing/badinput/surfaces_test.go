package badinput_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bpfd-dev/bpfd/internal/daemon"
	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
	"github.com/bpfd-dev/bpfd/pkg/artifact"
	"github.com/bpfd-dev/bpfd/pkg/verify"
)

// surface feeds the entries of one directory of testdata/bad to bpfd's public
// entry points.
type surface struct {
	// prepare, if set, builds what the operations read (an OCI layout) in
	// the run's work directory.
	prepare func(t *testing.T, r *run)
	// ops are the operations an entry goes through, each returning the
	// error of the entry point it calls.
	ops map[string]func(ctx context.Context, r *run) error
	// classes tells, for each error class entries of the surface name,
	// whether an error is of that class.
	classes map[string]func(error) bool
	// reason, if set, returns the reason an error carries, which must be
	// the entry's Reason (request: the status's ErrorInfo reason).
	reason func(error) string
	// leftovers, if set, runs after the operations and fails the test when
	// the entry left anything behind beyond the files runEntry checks
	// (request: programs loaded, pinned or recorded by the daemon).
	leftovers func(t *testing.T, r *run)
}

// run is one entry going through a surface.
type run struct {
	entry  *badinput.Entry
	work   string // a directory the entry's inputs are built in
	layout *badinput.Layout
	vars   map[string]string
	// daemon is the bpfd a request entry is sent to.
	daemon *requestDaemon
}

// platform is the platform artifacts are fetched for: fixed, so that the
// corpus means the same on every host.
var platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// surfaces lists the surfaces and how their entries are run. Adding one is
// one more entry here (request_test.go adds the daemon's gRPC requests) and
// a directory with a corpus.yaml under testdata/bad.
var surfaces = map[string]surface{
	"elf": {
		ops: map[string]func(context.Context, *run) error{
			"describe": func(_ context.Context, r *run) error {
				var objects []artifact.ObjectFile
				for _, path := range r.entry.FilePaths() {
					o, err := artifact.ReadObjectFile(path)
					if err != nil {
						return err
					}
					objects = append(objects, o)
				}
				_, err := artifact.Describe(objects)
				return err
			},
		},
		classes: map[string]func(error) bool{"invalid-object": is(artifact.ErrInvalidObject)},
	},
	"binary": {
		ops: map[string]func(context.Context, *run) error{
			"extract": func(_ context.Context, r *run) error {
				for _, path := range r.entry.FilePaths() {
					o, err := artifact.ReadEmbeddedObject(path)
					if err != nil {
						return err
					}
					if _, err := artifact.Describe([]artifact.ObjectFile{o}); err != nil {
						return err
					}
				}
				return nil
			},
		},
		classes: map[string]func(error) bool{"invalid-object": is(artifact.ErrInvalidObject)},
	},
	"artifact": {
		prepare: writeLayout,
		ops: map[string]func(context.Context, *run) error{
			"fetch": func(ctx context.Context, r *run) error {
				return withLayout(ctx, r, func(target *artifact.Target, root ocispec.Descriptor) error {
					_, err := artifact.Fetch(ctx, target, root, platform)
					return err
				})
			},
			"inspect": func(ctx context.Context, r *run) error {
				return withLayout(ctx, r, func(target *artifact.Target, root ocispec.Descriptor) error {
					_, err := artifact.Inspect(ctx, target, root)
					return err
				})
			},
		},
		classes: map[string]func(error) bool{
			"unsupported":     is(artifact.ErrUnsupported),
			"digest-mismatch": is(artifact.ErrDigestMismatch),
			"not-found":       is(artifact.ErrNotFound),
			"invalid-object":  is(artifact.ErrInvalidObject),
		},
	},
	"attestation": {
		prepare: writeLayout,
		ops: map[string]func(context.Context, *run) error{
			"verify": func(ctx context.Context, r *run) error {
				c, err := badinput.Locate()
				if err != nil {
					return err
				}
				policy, err := verify.ParsePolicy(attestationPolicy(c), verify.ParseOptions{Source: "attestation policy"})
				if err != nil {
					return fmt.Errorf("attestation policy: %w", err)
				}
				return withLayout(ctx, r, func(target *artifact.Target, root ocispec.Descriptor) error {
					v := verify.NewVerifier(policy, verify.VerifierOptions{})
					_, err := v.VerifyArtifact(ctx, target, verify.Subject{Name: target.Ref.Name(), Descriptor: root})
					return err
				})
			},
		},
		classes: map[string]func(error) bool{
			"attestation-missing":          deniedFor(verify.ReasonAttestationMissing),
			"attestation-conditions-unmet": deniedFor(verify.ReasonAttestationConditions),
		},
	},
	"signature": {
		prepare: writeLayout,
		ops: map[string]func(context.Context, *run) error{
			"verify": func(ctx context.Context, r *run) error {
				policy, err := corpusKeyPolicy()
				if err != nil {
					return fmt.Errorf("corpus key: %w", err)
				}
				return withLayout(ctx, r, func(target *artifact.Target, root ocispec.Descriptor) error {
					v := verify.NewVerifier(policy, verify.VerifierOptions{})
					_, err := v.VerifyArtifact(ctx, target, verify.Subject{Name: target.Ref.Name(), Descriptor: root})
					return err
				})
			},
		},
		classes: map[string]func(error) bool{
			"unreadable-signature": deniedFor(verify.ReasonUnreadableSignature),
			"digest-mismatch":      deniedFor(verify.ReasonDigestMismatch),
			"signature-invalid":    deniedFor(verify.ReasonSignatureInvalid),
			"untrusted-key":        deniedFor(verify.ReasonUntrustedKey),
			"unsigned":             deniedFor(verify.ReasonUnsigned),
		},
	},
	"policy": {
		ops: map[string]func(context.Context, *run) error{
			"load": func(_ context.Context, r *run) error {
				_, err := verify.LoadPolicy(r.entry.FilePaths()[0])
				return err
			},
		},
		classes: map[string]func(error) bool{"invalid-policy": is(verify.ErrInvalidPolicy)},
	},
	"config": {
		ops: map[string]func(context.Context, *run) error{
			"load": func(_ context.Context, r *run) error {
				_, err := daemon.LoadConfig(r.entry.FilePaths()[0], true)
				return err
			},
		},
		// The daemon's config errors carry no sentinel: the class is any
		// error about the content, not about reading the file.
		classes: map[string]func(error) bool{"invalid-config": func(err error) bool {
			var pe *fs.PathError
			return !errors.As(err, &pe)
		}},
	},
	"reference": {
		ops: map[string]func(context.Context, *run) error{
			"parse": func(_ context.Context, r *run) error {
				_, err := artifact.ParseReference(r.entry.Input)
				return err
			},
		},
		classes: map[string]func(error) bool{"invalid-reference": is(artifact.ErrInvalidReference)},
	},
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func deniedFor(reason verify.Reason) func(error) bool {
	return func(err error) bool {
		var denial *verify.DenialError
		return errors.As(err, &denial) && denial.Reason == reason
	}
}

// attestationPolicy trusts the corpus key for signatures of every image and
// requires SLSA provenance signed by it, from https://ci.example.com/trusted
// and a repository under git+https://github.com/example/.
func attestationPolicy(c *badinput.Corpus) []byte {
	return fmt.Appendf(nil, `apiVersion: bpfd.io/v1alpha1
kind: TrustPolicy
rules:
- name: corpus
  images: ["**"]
  authorities: [{key: {path: %q}}]
  require:
    attestations:
    - name: provenance
      predicateType: slsaprovenance
      authorities: [{key: {path: %q}}]
      conditions:
        builderId: https://ci.example.com/trusted
        sourceRepository: git+https://github.com/example/*
`, c.PublicKeyPath(), c.PublicKeyPath())
}

// minBad is the least number of bad entries the corpus holds.
const minBad = 40

// TestCorpus runs every entry of testdata/bad through its surface: a bad
// entry must be refused by each operation it names, with an error of its
// class, on one line, containing its message; a control entry must be
// accepted. No entry may panic or write anything.
func TestCorpus(t *testing.T) {
	c, err := badinput.Locate()
	if err != nil {
		t.Fatal(err)
	}
	names, err := c.Surfaces()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(surfaces)), names); diff != "" {
		t.Errorf("surfaces with a runner (-) and with a corpus.yaml (+) differ:\n%s", diff)
	}
	bad := 0
	for _, name := range names {
		table, err := c.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		bad += len(table.Bad())
		s, ok := surfaces[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			for _, e := range table.Entries {
				t.Run(e.Name, func(t *testing.T) { runEntry(t, c, table, s, e) })
			}
		})
	}
	if bad < minBad {
		t.Errorf("the corpus holds %d bad inputs, want at least %d", bad, minBad)
	}
}

func runEntry(t *testing.T, c *badinput.Corpus, table *badinput.Table, s surface, e *badinput.Entry) {
	if _, ok := s.classes[e.Expect]; !ok && e.Expect != badinput.ExpectOK {
		t.Fatalf("expect %q is not a class of surface %s (%s)", e.Expect, table.Surface, strings.Join(slices.Sorted(maps.Keys(s.classes)), ", "))
	}
	for _, op := range e.Ops {
		if _, ok := s.ops[op]; !ok {
			t.Fatalf("ops: %q is not an operation of surface %s", op, table.Surface)
		}
	}
	r := &run{entry: e, work: t.TempDir(), vars: map[string]string{"dir": table.Dir(), "bytecode": c.Bytecode}}
	subject, _, err := table.SubjectVars()
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(r.vars, subject)
	if s.prepare != nil {
		s.prepare(t, r)
	}
	before := snapshot(t, r.work, table.Dir())
	for _, op := range slices.Sorted(maps.Keys(s.ops)) {
		if e.Expect != badinput.ExpectOK && !e.Fails(op) {
			continue
		}
		err := safely(func() error { return s.ops[op](t.Context(), r) })
		if e.Expect == badinput.ExpectOK {
			if err != nil {
				t.Errorf("%s: control entry refused: %v", op, err)
			}
			continue
		}
		check(t, op, e, r, err, s.classes[e.Expect])
		if s.reason != nil && err != nil {
			if got := s.reason(err); got != e.Reason {
				t.Errorf("%s: reason %q, want %q", op, got, e.Reason)
			}
		}
	}
	if s.leftovers != nil {
		s.leftovers(t, r)
	}
	if diff := cmp.Diff(before, snapshot(t, r.work, table.Dir())); diff != "" {
		t.Errorf("files changed (-before +after):\n%s", diff)
	}
}

// check checks the error an operation returned for a bad entry.
func check(t *testing.T, op string, e *badinput.Entry, r *run, err error, class func(error) bool) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted; want a %s error", op, e.Expect)
		return
	}
	tmpl, terr := e.Template(r.vars)
	if terr != nil {
		t.Fatal(terr)
	}
	want, terr := tmpl.ExpandString(e.Message)
	if terr != nil {
		t.Fatalf("message: %v", terr)
	}
	msg := err.Error()
	t.Logf("%s: %s", op, msg)
	switch {
	case strings.HasPrefix(msg, "panic: "):
		t.Errorf("%s: %s", op, msg)
	case !class(err):
		t.Errorf("%s: error %q is not of class %s", op, msg, e.Expect)
	case strings.Contains(msg, "\n"):
		t.Errorf("%s: error is not one line:\n%s", op, msg)
	case !strings.Contains(msg, want):
		t.Errorf("%s: error\n\t%s\ndoes not contain\n\t%s", op, msg, want)
	}
}

// safely calls fn and turns a panic into an error starting with "panic: ".
func safely(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

// writeLayout writes the entry as an OCI layout in the run's directory.
func writeLayout(t *testing.T, r *run) {
	l, err := r.entry.WriteLayout(filepath.Join(r.work, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	r.layout = l
}

// withLayout opens the run's layout and resolves its root, as bpfctl-image
// and the daemon do, and calls fn.
func withLayout(ctx context.Context, r *run, fn func(*artifact.Target, ocispec.Descriptor) error) error {
	ref, err := artifact.ParseReference(r.layout.Ref())
	if err != nil {
		return err
	}
	target, err := artifact.Open(ctx, ref, artifact.OpenOptions{})
	if err != nil {
		return err
	}
	defer target.Close()
	root, err := target.ResolveReference(ctx)
	if err != nil {
		return err
	}
	return fn(target, root)
}

// corpusKeyPolicy trusts the corpus's signing key for every image.
func corpusKeyPolicy() (*verify.Policy, error) {
	c, err := badinput.Locate()
	if err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(c.PublicKeyPath())
	if err != nil {
		return nil, err
	}
	key, err := verify.ParsePublicKey(pemBytes)
	if err != nil {
		return nil, err
	}
	return verify.KeyPolicy(key)
}

// snapshot maps every file under dirs to its contents.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				files[path+"/"] = ""
				return nil
			}
			data, err := os.ReadFile(path)
			files[path] = string(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}
