package dispatcher

import (
	"cmp"
	"fmt"
	"time"
)

// Priorities order the programs on a hook: lower runs first.
const (
	MinPriority = 1
	MaxPriority = 1000
)

// CheckPriority reports a priority outside MinPriority..MaxPriority.
func CheckPriority(p int) error {
	if p < MinPriority || p > MaxPriority {
		return fmt.Errorf("priority %d: want %d to %d: %w", p, MinPriority, MaxPriority, ErrInvalid)
	}
	return nil
}

// Rank is what places a program on its hook: its priority, then, among equal
// priorities, the time it was attached, then its id. Ranks never change while
// a program is loaded, so removing one program keeps the order of the rest,
// and a restart rebuilds the same order from the same records.
type Rank struct {
	Priority int
	Attached time.Time
	ID       uint64
}

// Compare returns -1 when r runs before o, 1 when after and 0 when both are
// the same program.
func (r Rank) Compare(o Rank) int {
	if c := cmp.Compare(r.Priority, o.Priority); c != 0 {
		return c
	}
	if c := r.Attached.Compare(o.Attached); c != 0 {
		return c
	}
	return cmp.Compare(r.ID, o.ID)
}
