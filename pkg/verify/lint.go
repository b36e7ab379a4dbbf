package verify

import (
	"fmt"
	"slices"
	"strings"
)

// Lint returns what is valid in the policy but cannot be what its author
// meant, each with its line: image patterns that can never match a
// reference name (a relative oci:team/**, a pattern with a tag, digest or
// capital letters in a repository, a registry without a repository), and
// patterns an earlier rule's pattern already covers, so that their rule
// never governs those images (rules apply by first match). A rule all of
// whose patterns are covered is shadowed whole. A rule that lets every
// namespace load unsigned images is reported too.
func (p *Policy) Lint() []Problem {
	var out []Problem
	for i, r := range p.Rules {
		covered := 0
		for j, pattern := range r.Images {
			field := fmt.Sprintf("rules[%d].images[%d]", i, j)
			line := 0
			if j < len(r.imageLines) {
				line = r.imageLines[j]
			}
			if why := neverMatches(pattern); why != "" {
				out = append(out, Problem{Line: line, Field: field, Message: fmt.Sprintf("%q can never match: %s", pattern, why)})
				continue
			}
			if k, l, ok := p.coveredBefore(i, pattern); ok {
				covered++
				out = append(out, Problem{Line: line, Field: field, Message: fmt.Sprintf("%q is covered by rules[%d].images[%d] %q of the earlier rule %q: rule %q never governs those images (first match)", pattern, k, l, p.Rules[k].Images[l], p.Rules[k].Name, r.Name)})
			}
		}
		if r.AllowUnsigned && slices.Equal(r.Namespaces, []string{AnyNamespace}) {
			out = append(out, Problem{Line: firstLine(r), Field: fmt.Sprintf("rules[%d].namespaces", i), Message: fmt.Sprintf("rule %q lets every namespace load its images unsigned: list the namespaces that may", r.Name)})
		}
		if covered == len(r.Images) && covered > 0 {
			line := 0
			if len(r.imageLines) > 0 {
				line = r.imageLines[0]
			}
			out = append(out, Problem{Line: line, Field: fmt.Sprintf("rules[%d]", i), Message: fmt.Sprintf("rule %q is shadowed: earlier rules cover every image it names, so it never applies", r.Name)})
		}
	}
	return out
}

// firstLine returns the line of r's first image pattern, or 0.
func firstLine(r *Rule) int {
	if len(r.imageLines) > 0 {
		return r.imageLines[0]
	}
	return 0
}

// coveredBefore reports whether a pattern of a rule before rule i covers
// pattern, and which.
func (p *Policy) coveredBefore(i int, pattern string) (rule, image int, ok bool) {
	for k := 0; k < i; k++ {
		for l, earlier := range p.Rules[k].Images {
			if covers(earlier, pattern) {
				return k, l, true
			}
		}
	}
	return 0, 0, false
}

// covers reports whether every name pattern b matches is matched by pattern
// a too. It is conservative: true only when that is certain.
func covers(a, b string) bool {
	switch {
	case a == b, a == "**":
		return true
	case strings.HasSuffix(a, "**") && !hasWildcard(a[:len(a)-2]):
		return strings.HasPrefix(b, a[:len(a)-2])
	case strings.HasSuffix(a, "*") && !hasWildcard(a[:len(a)-1]):
		prefix := a[:len(a)-1]
		rest, ok := strings.CutPrefix(b, prefix)
		// a's * stops at "/": b must never produce one after the prefix.
		return ok && !strings.ContainsAny(rest, "/[\\") && !strings.Contains(rest, "**")
	}
	return false
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?[\\") }

// neverMatches says why no reference name can match pattern, or "".
func neverMatches(pattern string) string {
	for _, scheme := range []string{"oci:", "oci-archive:", "file:"} {
		rest, ok := strings.CutPrefix(pattern, scheme)
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "**") && !strings.HasPrefix(rest, "[") {
			return fmt.Sprintf("%s names are absolute paths (%s/path), and this one is relative", scheme, scheme)
		}
		return ""
	}
	if strings.Contains(pattern, "@") {
		return "names never hold a digest; a rule covers every digest of its images"
	}
	host, path, ok := strings.Cut(pattern, "/")
	if !ok && !strings.Contains(host, "**") {
		return "a registry name is host/repository, and this has no repository"
	}
	if strings.Contains(path, ":") {
		return "names never hold a tag; a rule covers every tag of its images"
	}
	if path != strings.ToLower(path) {
		return "repository names are lower case"
	}
	return ""
}
