package inventory

import "errors"

// ErrUnsupported means the kernel lacks what a requested holder source
// needs: the task_file iterator, BTF or BPF links.
var ErrUnsupported = errors.New("not supported by the kernel")

// ErrInvalid means Options asked for something that does not exist.
var ErrInvalid = errors.New("invalid options")
