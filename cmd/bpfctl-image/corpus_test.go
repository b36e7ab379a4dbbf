package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	"github.com/bpfd-dev/bpfd/internal/testing/badinput"
)

// corpusRun is one entry of testdata/bad going through bpfctl-image.
type corpusRun struct {
	entry  *badinput.Entry
	corpus *badinput.Corpus
	work   string // where the entry's layout is written and pull writes
	layout *badinput.Layout
	valid  string // the reference of a valid artifact, for policies
}

// cliSurface runs the entries of one surface of testdata/bad through
// bpfctl-image.
type cliSurface struct {
	// layout says the entries are OCI layouts to write first.
	layout bool
	// commands returns the command lines an entry is run with, by the
	// operation of the corpus they stand for.
	commands func(r *corpusRun) map[string][]string
	// codes maps each error class to the exit code it must give.
	codes map[string]int
	// report says the command prints a report on stdout even when it fails
	// (verify's denial).
	report bool
}

// cliSurfaces are the surfaces of testdata/bad a bpfctl-image command reads.
// (Daemon config files are bpfd's, whose command-line tests run them.)
var cliSurfaces = map[string]cliSurface{
	"elf": {
		commands: func(r *corpusRun) map[string][]string {
			return map[string][]string{"describe": append([]string{"build", "--dest", "oci:" + filepath.Join(r.work, "out") + ":v1"}, r.entry.FilePaths()...)}
		},
		codes: map[string]int{"invalid-object": cliutil.ExitError},
	},
	"binary": {
		commands: func(r *corpusRun) map[string][]string {
			return map[string][]string{"extract": append([]string{"extract", "--out", filepath.Join(r.work, "out.bpf.o")}, r.entry.FilePaths()...)}
		},
		codes: map[string]int{"invalid-object": cliutil.ExitError},
	},
	"artifact": {
		layout: true,
		commands: func(r *corpusRun) map[string][]string {
			// verify admits every layout unsigned, then reads the artifact.
			policy := filepath.Join(r.work, "policy.yaml")
			if err := os.WriteFile(policy, []byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: any\n  images: ['oci:/**']\n  allowUnsigned: true\n"), 0o644); err != nil {
				panic(err)
			}
			return map[string][]string{
				"fetch":   {"pull", "--platform", "linux/amd64", "--dest", filepath.Join(r.work, "out"), r.layout.Ref()},
				"inspect": {"inspect", r.layout.Ref()},
				"verify":  {"verify", "--policy", policy, r.layout.Ref()},
			}
		},
		codes: map[string]int{
			"unsupported": cliutil.ExitError, "digest-mismatch": cliutil.ExitError,
			"invalid-object": cliutil.ExitError, "not-found": cliutil.ExitNotFound,
		},
	},
	"signature": {
		layout: true,
		report: true,
		commands: func(r *corpusRun) map[string][]string {
			return map[string][]string{"verify": {"verify", "--key", r.corpus.PublicKeyPath(), r.layout.Ref()}}
		},
		codes: map[string]int{
			"unreadable-signature": cliutil.ExitDenied, "digest-mismatch": cliutil.ExitDenied,
			"signature-invalid": cliutil.ExitDenied, "untrusted-key": cliutil.ExitDenied, "unsigned": cliutil.ExitDenied,
		},
	},
	"attestation": {
		layout: true,
		report: true,
		commands: func(r *corpusRun) map[string][]string {
			policy := filepath.Join(r.work, "policy.yaml")
			pub := r.corpus.PublicKeyPath()
			text := "apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\nrules:\n- name: corpus\n  images: [\"**\"]\n  authorities: [{key: {path: " + pub + "}}]\n" +
				"  require:\n    attestations:\n    - name: provenance\n      predicateType: slsaprovenance\n      authorities: [{key: {path: " + pub + "}}]\n" +
				"      conditions: {builderId: https://ci.example.com/trusted, sourceRepository: \"git+https://github.com/example/*\"}\n"
			if err := os.WriteFile(policy, []byte(text), 0o644); err != nil {
				panic(err)
			}
			return map[string][]string{"verify": {"verify", "--policy", policy, r.layout.Ref()}}
		},
		codes: map[string]int{"attestation-missing": cliutil.ExitDenied, "attestation-conditions-unmet": cliutil.ExitDenied},
	},
	"policy": {
		commands: func(r *corpusRun) map[string][]string {
			return map[string][]string{"load": {"verify", "--policy", r.entry.FilePaths()[0], r.valid}}
		},
		codes: map[string]int{"invalid-policy": cliutil.ExitError},
	},
	"reference": {
		commands: func(r *corpusRun) map[string][]string {
			return map[string][]string{"parse": {"inspect", r.entry.Input}}
		},
		codes: map[string]int{"invalid-reference": cliutil.ExitUsage},
	},
}

// TestCorpusCLI runs the entries of testdata/bad that a bpfctl-image command
// reads through it, in-process: a bad entry must exit with its class's code
// and one line on stderr holding its message, and change no file; a control
// entry must succeed.
func TestCorpusCLI(t *testing.T) {
	c, err := badinput.Locate()
	if err != nil {
		t.Fatal(err)
	}
	artifacts, err := c.Table("artifact")
	if err != nil {
		t.Fatal(err)
	}
	valid := entryNamed(t, artifacts, "valid")
	validLayout, err := valid.WriteLayout(filepath.Join(t.TempDir(), "valid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(cliSurfaces)) {
		s := cliSurfaces[name]
		table, err := c.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			for _, e := range table.Entries {
				t.Run(e.Name, func(t *testing.T) {
					r := &corpusRun{entry: e, corpus: c, work: t.TempDir(), valid: validLayout.Ref()}
					if s.layout {
						if r.layout, err = e.WriteLayout(filepath.Join(r.work, "layout")); err != nil {
							t.Fatal(err)
						}
					}
					runCorpusEntry(t, c, table, s, r)
				})
			}
		})
	}
}

func runCorpusEntry(t *testing.T, c *badinput.Corpus, table *badinput.Table, s cliSurface, r *corpusRun) {
	e := r.entry
	vars := map[string]string{"dir": table.Dir(), "bytecode": c.Bytecode}
	subject, _, err := table.SubjectVars()
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(vars, subject)
	tmpl, err := e.Template(vars)
	if err != nil {
		t.Fatal(err)
	}
	commands := s.commands(r)
	for _, op := range slices.Sorted(maps.Keys(commands)) {
		args := commands[op]
		if e.Expect == badinput.ExpectOK {
			if res := bpfctlImage(t, args...); res.code != cliutil.ExitOK {
				t.Errorf("bpfctl-image %s: control entry refused: exit %d\n%s", strings.Join(args, " "), res.code, res.stderr)
			}
			continue
		}
		if !e.Fails(op) {
			continue
		}
		want, err := tmpl.ExpandString(e.Message)
		if err != nil {
			t.Fatal(err)
		}
		code, ok := s.codes[e.Expect]
		if !ok {
			t.Fatalf("no exit code for class %s", e.Expect)
		}
		before := snapshot(t, r.work)
		inputs := snapshot(t, table.Dir())
		res := bpfctlImage(t, args...)
		t.Logf("%s: exit %d: %s", args[0], res.code, res.stderr)
		if res.code != code {
			t.Errorf("%s: exit %d, want %d", args[0], res.code, code)
		}
		if lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(res.stderr, "bpfctl-image: ") || !strings.Contains(res.stderr, want) {
			t.Errorf("%s: stderr\n\t%s\nwant one line holding\n\t%s", args[0], res.stderr, want)
		}
		if res.stdout != "" && !s.report {
			t.Errorf("%s: stdout %q, want nothing", args[0], res.stdout)
		}
		if diff := cmp.Diff(before, snapshot(t, r.work)); diff != "" {
			t.Errorf("%s: files changed (-before +after):\n%s", args[0], diff)
		}
		if diff := cmp.Diff(inputs, snapshot(t, table.Dir())); diff != "" {
			t.Errorf("%s: corpus files changed (-before +after):\n%s", args[0], diff)
		}
	}
}

func entryNamed(t *testing.T, table *badinput.Table, name string) *badinput.Entry {
	t.Helper()
	for _, e := range table.Entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("surface %s has no entry %s", table.Surface, name)
	return nil
}
