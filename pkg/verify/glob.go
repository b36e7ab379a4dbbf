package verify

import (
	"errors"
	"regexp"
	"strings"
)

// compileGlob compiles an image pattern to an anchored regular expression:
// `**` matches any run of characters, `*` any run without `/`, `?` one
// character other than `/`, `[...]` (or `[!...]`) a character class, `\x`
// the character x; everything else matches itself.
func compileGlob(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	var b strings.Builder
	b.WriteString("^")
	runes := []rune(pattern)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; c {
		case '*':
			if i+1 < len(runes) && runes[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			end := classEnd(runes, i)
			if end < 0 {
				return nil, errors.New("unterminated character class '['")
			}
			class := runes[i+1 : end]
			b.WriteString("[")
			if class[0] == '!' || class[0] == '^' {
				b.WriteString("^")
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
var anyImage = regexp.MustCompile(`^.*$`)
