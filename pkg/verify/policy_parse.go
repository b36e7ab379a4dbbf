package verify

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/validate/content"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// ParseOptions configures ParsePolicy. The zero value names the policy
// "policy" and finds relative files from the current directory.
type ParseOptions struct {
	// Source names the policy in error messages, usually its file name.
	Source string
	// BaseDir is where relative key and trusted-root paths are found.
	BaseDir string
}

// LoadPolicy reads, parses and validates the trust policy file at path.
// Relative paths in it are relative to its directory.
func LoadPolicy(path string) (*Policy, error) {
	data, err := readPolicyFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	return ParsePolicy(data, ParseOptions{Source: path, BaseDir: filepath.Dir(path)})
}

// ParsePolicy parses and validates a trust policy: it reads the key and
// trusted-root files it names and compiles its patterns. It reports every
// problem at once, each with its line, as a *PolicyError (which wraps
// ErrInvalidPolicy).
func ParsePolicy(data []byte, opts ParseOptions) (*Policy, error) {
	p := &policyParser{source: opts.Source, dir: opts.BaseDir}
	if p.source == "" {
		p.source = "policy"
	}
	pol := p.parse(data)
	if len(p.problems) > 0 {
		slices.SortStableFunc(p.problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &PolicyError{Source: p.source, Problems: p.problems}
	}
	var err error
	if pol.fingerprint, err = pol.computeFingerprint(); err != nil {
		return nil, err
	}
	return pol, nil
}

// PolicyError lists everything wrong with a trust policy.
type PolicyError struct {
	// Source names the policy (its file).
	Source string
	// Problems in line order.
	Problems []Problem
}

// Problem is one thing wrong with a policy.
type Problem struct {
	// Line is the 1-based line in the file; 0 when unknown.
	Line int
	// Field is the path of the field, like "rules[0].images[1]".
	Field string
	// Message says what is wrong.
	Message string
}

// in formats the problem as a compiler would: "SOURCE:LINE: FIELD: MESSAGE".
func (p Problem) in(source string) string {
	s := source
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	if p.Field != "" {
		s += ": " + p.Field
	}
	return s + ": " + p.Message
}

func (e *PolicyError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("%s: %s", ErrInvalidPolicy, e.Problems[0].in(e.Source))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d problems:", ErrInvalidPolicy, e.Source, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s", p.in(e.Source))
	}
	return b.String()
}

func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

// policyParser walks the YAML node tree, so that every problem has a line,
// and collects problems instead of stopping at the first.
type policyParser struct {
	source   string
	dir      string
	problems []Problem
	// nameNodes holds each parsed rule's name node, to place duplicates.
	nameNodes map[*Rule]*yaml.Node
}

func (p *policyParser) problem(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (p *policyParser) parse(data []byte) *Policy {
	pol := &Policy{Default: DefaultDeny}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.problem(nil, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return pol
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.problem(nil, "", "empty policy: want apiVersion %s, kind %s and rules", PolicyAPIVersion, PolicyKind)
		return pol
	}
	top := doc.Content[0]
	var apiVersion, kind string
	seen := p.mapping(top, "", map[string]func(string, *yaml.Node){
		"apiVersion": func(f string, n *yaml.Node) {
			if apiVersion = p.str(f, n); apiVersion != "" && apiVersion != PolicyAPIVersion {
				p.problem(n, f, "unsupported version %q: want %s", apiVersion, PolicyAPIVersion)
			}
		},
		"kind": func(f string, n *yaml.Node) {
			if kind = p.str(f, n); kind != "" && kind != PolicyKind {
				p.problem(n, f, "kind %q: want %s", kind, PolicyKind)
			}
		},
		"default": func(f string, n *yaml.Node) {
			switch d := DefaultAction(p.str(f, n)); d {
			case DefaultDeny, DefaultAllowUnsigned:
				pol.Default = d
			default:
				p.problem(n, f, "%q: want %s or %s", d, DefaultDeny, DefaultAllowUnsigned)
			}
		},
		"rules": func(f string, n *yaml.Node) {
			p.seq(f, n, func(f string, item *yaml.Node) {
				if r := p.rule(f, item); r != nil {
					pol.Rules = append(pol.Rules, r)
				}
			})
		},
	})
	if top.Kind == yaml.MappingNode {
		for _, required := range []string{"apiVersion", "kind"} {
			if !seen[required] {
				p.problem(top, required, "missing")
			}
		}
	}
	names := map[string]int{}
	for i, r := range pol.Rules {
		if j, dup := names[r.Name]; dup && r.Name != "" {
			p.problem(p.nameNodes[r], fmt.Sprintf("rules[%d].name", i), "%q is also the name of rules[%d]", r.Name, j)
		}
		names[r.Name] = i
	}
	return pol
}

func (p *policyParser) rule(field string, n *yaml.Node) *Rule {
	r := &Rule{Threshold: 1, Mode: ModeEnforce}
	var images, authorities, threshold, require *yaml.Node
	seen := p.mapping(n, field, map[string]func(string, *yaml.Node){
		"name": func(f string, n *yaml.Node) {
			r.Name = p.str(f, n)
			if p.nameNodes == nil {
				p.nameNodes = map[*Rule]*yaml.Node{}
			}
			p.nameNodes[r] = n
		},
		"images": func(f string, n *yaml.Node) {
			images = n
			p.seq(f, n, func(f string, item *yaml.Node) {
				pattern := p.str(f, item)
				if pattern == "" {
					return
				}
				re, err := compileGlob(pattern)
				if err != nil {
					p.problem(item, f, "bad image pattern %q: %v", pattern, err)
					return
				}
				r.Images, r.globs = append(r.Images, pattern), append(r.globs, re)
				r.imageLines = append(r.imageLines, item.Line)
			})
		},
		"authorities": func(f string, n *yaml.Node) {
			authorities = n
			p.seq(f, n, func(f string, item *yaml.Node) {
				if a := p.authority(f, item); a != nil {
					r.Authorities = append(r.Authorities, a)
				}
			})
		},
		"threshold": func(f string, n *yaml.Node) {
			reported := len(p.problems)
			if threshold, r.Threshold = n, p.int(f, n); len(p.problems) > reported {
				r.Threshold = 1 // the default: a threshold that is no number is not also out of range
			}
		},
		"mode": func(f string, n *yaml.Node) {
			switch m := Mode(p.str(f, n)); m {
			case ModeEnforce, ModeWarn:
				r.Mode = m
			default:
				p.problem(n, f, "%q: want %s or %s", m, ModeEnforce, ModeWarn)
			}
		},
		"allowUnsigned": func(f string, n *yaml.Node) { r.AllowUnsigned = p.bool(f, n) },
		"namespaces":    func(f string, n *yaml.Node) { r.Namespaces = p.namespaces(f, n) },
		"require": func(f string, n *yaml.Node) {
			require = n
			p.mapping(n, f, map[string]func(string, *yaml.Node){
				"attestations": func(f string, n *yaml.Node) {
					if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
						p.problem(n, f, "empty: list the attestations the images must carry, or leave out require")
						return
					}
					p.seq(f, n, func(f string, item *yaml.Node) {
						if req := p.requirement(f, item); req != nil {
							r.Attestations = append(r.Attestations, req)
						}
					})
				},
			})
		},
		"allow": func(f string, n *yaml.Node) {
			seen := p.mapping(n, f, map[string]func(string, *yaml.Node){
				"programTypes": func(f string, n *yaml.Node) {
					if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
						// An empty list could mean "none" or "any": refuse the ambiguity.
						p.problem(n, f, "empty: list the program types the images may load, or leave out allow to allow any")
						return
					}
					p.seq(f, n, func(f string, item *yaml.Node) {
						k, err := progtype.Parse(p.str(f, item))
						if err != nil {
							p.problem(item, f, "%v", err)
							return
						}
						r.ProgramTypes = append(r.ProgramTypes, k)
					})
				},
			})
			if n.Kind == yaml.MappingNode && len(seen) == 0 {
				p.problem(n, f, "empty: list programTypes, or leave out allow to allow any program type")
			}
		},
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if !seen["name"] {
		p.problem(n, field+".name", "missing: every rule needs a name")
	}
	if !seen["images"] {
		p.problem(n, field+".images", "missing: list the image patterns the rule covers")
	} else if images.Kind == yaml.SequenceNode && len(images.Content) == 0 {
		p.problem(images, field+".images", "empty: list the image patterns the rule covers")
	}
	nAuth := 0
	if authorities != nil && authorities.Kind == yaml.SequenceNode {
		nAuth = len(authorities.Content)
	}
	switch {
	case r.AllowUnsigned && nAuth > 0:
		p.problem(authorities, field+".authorities", "a rule with allowUnsigned takes no authorities")
	case r.AllowUnsigned && threshold != nil:
		p.problem(threshold, field+".threshold", "a rule with allowUnsigned takes no threshold")
	case !r.AllowUnsigned && nAuth == 0:
		p.problem(orNode(authorities, n), field+".authorities", "empty: list at least one key or keyless authority, or set allowUnsigned: true")
	case threshold != nil && (r.Threshold < 1 || r.Threshold > nAuth):
		p.problem(threshold, field+".threshold", "%d: want between 1 and the number of authorities (%d)", r.Threshold, nAuth)
	}
	if r.AllowUnsigned {
		r.Threshold = 0
		if require != nil {
			p.problem(require, field+".require", "a rule with allowUnsigned requires no attestations (signatures come first)")
		}
	}
	names := map[string]bool{}
	for i, req := range r.Attestations {
		if names[req.Name] {
			p.problem(require, fmt.Sprintf("%s.require.attestations[%d].name", field, i), "%q names another requirement of the rule too", req.Name)
		}
		names[req.Name] = true
	}
	return r
}

// maxNamespaceLen bounds a Kubernetes namespace name (an RFC 1123 label).
const maxNamespaceLen = content.DNS1123LabelMaxLength

// namespaces parses a rule's namespaces: names of Kubernetes namespaces
// (RFC 1123 labels), or "*" alone for every namespace. Names are not
// patterns: a glob like team-* is refused, so that which namespaces a rule
// admits is read off the file, not worked out.
func (p *policyParser) namespaces(field string, n *yaml.Node) []string {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		// An empty list could mean "none" or "any": refuse the ambiguity.
		p.problem(n, field, "empty: list the namespaces the rule admits, or \"*\" for every one, or leave out namespaces to admit requests without a namespace only")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	p.seq(field, n, func(f string, item *yaml.Node) {
		ns := p.str(f, item)
		switch {
		case ns == "":
			return
		case ns == AnyNamespace && len(n.Content) > 1:
			p.problem(item, f, "\"*\" admits every namespace: give it alone, not with other names")
			return
		case ns == AnyNamespace:
		case strings.ContainsAny(ns, "*?[]\\{}"):
			p.problem(item, f, "%q: a namespace is a name, not a pattern (only \"*\" alone, for every namespace)", ns)
			return
		case !namespaceName(ns):
			p.problem(item, f, "%.70q: not a namespace name (at most %d lower-case letters, digits and '-', beginning and ending with a letter or digit)", ns, maxNamespaceLen)
			return
		case seen[ns]:
			p.problem(item, f, "%q: repeated", ns)
			return
		}
		seen[ns] = true
		out = append(out, ns)
	})
	return out
}

// namespaceName reports whether s is a Kubernetes namespace name: an RFC
// 1123 label.
func namespaceName(s string) bool { return len(content.IsDNS1123Label(s)) == 0 }

// requirement parses one entry of require.attestations.
func (p *policyParser) requirement(field string, n *yaml.Node) *AttestationRequirement {
	req := &AttestationRequirement{Threshold: 1}
	var authorities, threshold, typeNode, conditions *yaml.Node
	seen := p.mapping(n, field, map[string]func(string, *yaml.Node){
		"name": func(f string, n *yaml.Node) { req.Name = p.str(f, n) },
		"predicateType": func(f string, n *yaml.Node) {
			typeNode = n
			if name := p.str(f, n); name != "" {
				uri, err := PredicateType(name)
				if err != nil {
					p.problem(n, f, "%v", err)
					return
				}
				req.PredicateType = uri
			}
		},
		"authorities": func(f string, n *yaml.Node) {
			authorities = n
			p.seq(f, n, func(f string, item *yaml.Node) {
				if a := p.authority(f, item); a != nil {
					req.Authorities = append(req.Authorities, a)
				}
			})
		},
		"threshold": func(f string, n *yaml.Node) {
			reported := len(p.problems)
			if threshold, req.Threshold = n, p.int(f, n); len(p.problems) > reported {
				req.Threshold = 1
			}
		},
		"conditions": func(f string, n *yaml.Node) {
			conditions = n
			c := &req.Conditions
			seen := p.mapping(n, f, map[string]func(string, *yaml.Node){
				"builderId": func(f string, n *yaml.Node) { c.BuilderID = p.str(f, n) },
				"buildType": func(f string, n *yaml.Node) { c.BuildType = p.str(f, n) },
				"sourceRepository": func(f string, n *yaml.Node) {
					if c.SourceRepository = p.str(f, n); c.SourceRepository != "" {
						re, err := compileGlob(c.SourceRepository)
						if err != nil {
							p.problem(n, f, "bad pattern %q: %v", c.SourceRepository, err)
							return
						}
						c.source = re
					}
				},
			})
			if n.Kind == yaml.MappingNode && len(seen) == 0 {
				p.problem(n, f, "empty: give builderId, buildType or sourceRepository, or leave out conditions")
			}
		},
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if !seen["predicateType"] {
		p.problem(n, field+".predicateType", "missing: name the predicate type (slsaprovenance, slsaprovenance1, spdx, ... or a URI)")
	}
	nAuth := 0
	if authorities != nil && authorities.Kind == yaml.SequenceNode {
		nAuth = len(authorities.Content)
	}
	switch {
	case nAuth == 0:
		p.problem(orNode(authorities, n), field+".authorities", "empty: list the keys or keyless identities that must sign the attestation")
	case threshold != nil && (req.Threshold < 1 || req.Threshold > nAuth):
		p.problem(threshold, field+".threshold", "%d: want between 1 and the number of authorities (%d)", req.Threshold, nAuth)
	}
	if conditions != nil && req.PredicateType != "" && !isSLSAProvenance(req.PredicateType) {
		p.problem(conditions, field+".conditions", "conditions read SLSA provenance; predicate type %s has none", req.PredicateType)
	}
	if req.Name == "" {
		req.Name = req.PredicateType
	}
	if typeNode == nil || req.PredicateType == "" || len(req.Authorities) != nAuth {
		return nil // reported already
	}
	return req
}

func (p *policyParser) authority(field string, n *yaml.Node) *Authority {
	a := &Authority{}
	seen := p.mapping(n, field, map[string]func(string, *yaml.Node){
		"key":     func(f string, n *yaml.Node) { a.Key, a.KeySource = p.key(f, n) },
		"keyless": func(f string, n *yaml.Node) { a.Keyless = p.keyless(f, n) },
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if seen["key"] == seen["keyless"] {
		p.problem(n, field, "want exactly one of key and keyless")
		return nil
	}
	if a.Key == nil && a.Keyless == nil {
		return nil // reported already
	}
	return a
}

func (p *policyParser) key(field string, n *yaml.Node) (*PublicKey, string) {
	var path, pemText string
	var pathNode, pemNode *yaml.Node
	seen := p.mapping(n, field, map[string]func(string, *yaml.Node){
		"path": func(f string, n *yaml.Node) { pathNode, path = n, p.str(f, n) },
		"pem":  func(f string, n *yaml.Node) { pemNode, pemText = n, p.str(f, n) },
	})
	if n.Kind != yaml.MappingNode {
		return nil, ""
	}
	if seen["path"] == seen["pem"] {
		p.problem(n, field, "want exactly one of path (a PEM public key file) and pem (the key inline)")
		return nil, ""
	}
	if pemNode != nil {
		k, err := ParsePublicKey([]byte(pemText))
		if err != nil {
			p.problem(pemNode, field+".pem", "%v", err)
			return nil, ""
		}
		return k, "inline"
	}
	if path == "" {
		return nil, ""
	}
	path = p.resolve(path)
	data, err := readPolicyFile(path)
	if err != nil {
		p.problem(pathNode, field+".path", "unreadable key file: %v", err)
		return nil, ""
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		p.problem(pathNode, field+".path", "key file %s: %v", path, err)
		return nil, ""
	}
	return k, path
}

func (p *policyParser) keyless(field string, n *yaml.Node) *Keyless {
	k := &Keyless{}
	var rootNode *yaml.Node
	regexps := map[string]*yaml.Node{}
	seen := p.mapping(n, field, map[string]func(string, *yaml.Node){
		"trustedRoot":   func(f string, n *yaml.Node) { rootNode, k.TrustedRoot = n, p.str(f, n) },
		"issuer":        func(f string, n *yaml.Node) { k.Issuer = p.str(f, n) },
		"issuerRegExp":  func(f string, n *yaml.Node) { regexps["issuerRegExp"], k.IssuerRegExp = n, p.str(f, n) },
		"subject":       func(f string, n *yaml.Node) { k.Subject = p.str(f, n) },
		"subjectRegExp": func(f string, n *yaml.Node) { regexps["subjectRegExp"], k.SubjectRegExp = n, p.str(f, n) },
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	ok := true
	if !seen["trustedRoot"] {
		p.problem(n, field+".trustedRoot", "missing: name the trusted_root.json holding the certificate authorities")
		ok = false
	} else if k.TrustedRoot != "" {
		k.TrustedRoot = p.resolve(k.TrustedRoot)
		data, err := readPolicyFile(k.TrustedRoot)
		if err == nil {
			k.root, err = root.NewTrustedRootFromJSON(data)
		}
		if err != nil {
			p.problem(rootNode, field+".trustedRoot", "trusted root %s: %v", k.TrustedRoot, err)
			ok = false
		} else {
			k.rootDigest = digest.FromBytes(data).String()
		}
	}
	for _, pair := range [][2]string{{"issuer", "issuerRegExp"}, {"subject", "subjectRegExp"}} {
		if seen[pair[0]] == seen[pair[1]] {
			p.problem(n, field, "want exactly one of %s and %s", pair[0], pair[1])
			ok = false
		}
	}
	for _, name := range slices.Sorted(maps.Keys(regexps)) {
		node := regexps[name]
		if _, err := regexp.Compile(node.Value); err != nil {
			p.problem(node, field+"."+name, "regular expression does not compile: %v", err)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	id, err := sgverify.NewShortCertificateIdentity(k.Issuer, k.IssuerRegExp, k.Subject, k.SubjectRegExp)
	if err != nil {
		p.problem(n, field, "%v", err)
		return nil
	}
	k.identity = id
	return k
}

// maxPolicyFileSize bounds a policy file and the key and trusted-root files
// it names.
const maxPolicyFileSize = 4 << 20

// readPolicyFile reads a policy, key or trusted-root file: a regular file of
// at most maxPolicyFileSize bytes, so that a path naming /dev/zero or a FIFO
// fails instead of reading or waiting forever.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // opening a FIFO must not wait for a writer
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPolicyFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("more than %d bytes", maxPolicyFileSize)}
	}
	return data, nil
}

// resolve makes a path from the policy absolute, relative to its directory.
func (p *policyParser) resolve(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.dir, path)
}

// mapping calls fields[key] for every key of the mapping n, reporting
// unknown and repeated keys, and returns the keys seen.
func (p *policyParser) mapping(n *yaml.Node, field string, fields map[string]func(string, *yaml.Node)) map[string]bool {
	seen := map[string]bool{}
	if n.Kind != yaml.MappingNode {
		p.problem(n, field, "want a mapping, not %s", describe(n))
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := k.Value
		if field != "" {
			sub = field + "." + k.Value
		}
		if seen[k.Value] {
			p.problem(k, sub, "repeated")
			continue
		}
		seen[k.Value] = true
		fn, ok := fields[k.Value]
		if !ok {
			p.problem(k, sub, "unknown field (want one of %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			continue
		}
		fn(sub, v)
	}
	return seen
}

// seq calls item for every element of the sequence n.
func (p *policyParser) seq(field string, n *yaml.Node, item func(string, *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		p.problem(n, field, "want a list, not %s", describe(n))
		return
	}
	for i, e := range n.Content {
		item(fmt.Sprintf("%s[%d]", field, i), e)
	}
}

func (p *policyParser) str(field string, n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.problem(n, field, "want a string, not %s", describe(n))
		return ""
	}
	if n.Value == "" {
		p.problem(n, field, "empty")
	}
	return n.Value
}

func (p *policyParser) int(field string, n *yaml.Node) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.problem(n, field, "want a whole number, not %s", describe(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		p.problem(n, field, "%v", err)
	}
	return v
}

func (p *policyParser) bool(field string, n *yaml.Node) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.problem(n, field, "want true or false, not %s", describe(n))
	}
	return b
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}
