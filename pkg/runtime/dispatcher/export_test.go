package dispatcher

import (
	"errors"
	"fmt"
)

// InterruptRebuild does what Apply does with members up to step, then
// releases every descriptor as a killed process would: "pinned" stops once
// the new chain is pinned, before the hook runs it; "swapped" once the hook
// runs it, before the old chain is retired. d is closed afterwards.
func (d *Dispatcher) InterruptRebuild(members []Member, step string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := build(d.hook.Kind, d.opts.Mode, members, d.exts, BuildOptions{Accounting: d.accounting})
	if err != nil {
		return err
	}
	if _, err := pinGeneration(d.opts.PinDir, c); err != nil {
		return errors.Join(err, c.Close())
	}
	switch step {
	case "pinned":
	case "swapped":
		if err := d.swap(c.prog); err != nil {
			return errors.Join(err, c.Close())
		}
	default:
		return fmt.Errorf("unknown step %q", step)
	}
	return errors.Join(c.Close(), d.closeAll())
}
