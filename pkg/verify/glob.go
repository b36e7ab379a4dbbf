package verify

import (
	"errors"
	"regexp"
	"strings"
	"unicode"
)

// compileGlob compiles an image pattern to an anchored regular expression:
// `**` matches any run of characters, `*` any run without `/`, `?` one
// character other than `/`, `[...]` (or `[!...]`) a character class, `\x`
// the character x; everything else matches itself. No wildcard or class
// matches a control character (a newline among them), so `**` and `*`
// agree; a pattern holding one is refused, and matchName refuses names
// holding one.
func compileGlob(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	if hasControl(pattern) {
		return nil, errors.New("contains control characters")
	}
	var b strings.Builder
	b.WriteString(`^(?s)`)
	runes := []rune(pattern)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; c {
		case '*':
			if i+1 < len(runes) && runes[i+1] == '*' {
				b.WriteString(`[^\x00-\x1f\x7f-\x{9f}]*`)
				i++
			} else {
				b.WriteString(`[^/\x00-\x1f\x7f-\x{9f}]*`)
			}
		case '?':
			b.WriteString(`[^/\x00-\x1f\x7f-\x{9f}]`)
		case '[':
			end := classEnd(runes, i)
			if end < 0 {
				return nil, errors.New("unterminated character class '['")
			}
			class := runes[i+1 : end]
			b.WriteString("[")
			if class[0] == '!' || class[0] == '^' {
				b.WriteString(`^\x00-\x1f\x7f-\x{9f}`)
				class = class[1:]
			}
			for _, r := range class {
				if r == '\\' || r == '[' || r == ']' {
					b.WriteString(`\`)
				}
				b.WriteRune(r)
			}
			b.WriteString("]")
			i = end
		case '\\':
			if i+1 == len(runes) {
				return nil, errors.New("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(runes[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return re, nil
}

// classEnd returns the index of the ']' closing the class opened at
// runes[open], or -1. A ']' right after the '[' (or "[!") belongs to the
// class; an empty class is unterminated.
func classEnd(runes []rune, open int) int {
	i := open + 1
	if i < len(runes) && (runes[i] == '!' || runes[i] == '^') {
		i++
	}
	if i < len(runes) && runes[i] == ']' {
		i++
	}
	for ; i < len(runes); i++ {
		if runes[i] == ']' {
			return i
		}
	}
	return -1
}

// anyImage is the pattern "**".
var anyImage = regexp.MustCompile(`^(?s)[^\x00-\x1f\x7f-\x{9f}]*$`)

// hasControl reports whether s holds a control character (C0, DEL or C1).
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// matchName reports whether the compiled pattern re matches the reference
// name. A name with a control character matches nothing: no reference that
// parses has one, and a newline must not let a pattern match a name it
// was not written for.
func matchName(re *regexp.Regexp, name string) bool {
	return !hasControl(name) && re.MatchString(name)
}
