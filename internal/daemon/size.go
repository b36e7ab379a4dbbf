package daemon

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes in the configuration file: an integer, or a
// number with a binary suffix, Ki, Mi, Gi or Ti ("64Mi" is 67108864).
type ByteSize int64

var sizeSuffixes = []struct {
	suffix string
	shift  uint
}{{"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}}

// ParseByteSize reads a size as the configuration file writes it.
func ParseByteSize(s string) (ByteSize, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range sizeSuffixes {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size: want bytes, or a number with Ki, Mi, Gi or Ti", s)
	}
	return ByteSize(n << shift), nil
}

// UnmarshalYAML reads an integer or a string with a suffix.
func (b *ByteSize) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size is a number of bytes or a string such as 64Mi", node.Line)
	}
	v, err := ParseByteSize(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", node.Line, err)
	}
	*b = v
	return nil
}

// String writes b with the largest suffix that divides it.
func (b ByteSize) String() string {
	for i := len(sizeSuffixes) - 1; i >= 0; i-- {
		u := sizeSuffixes[i]
		if b != 0 && b%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(b)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
