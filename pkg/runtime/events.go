package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfd-dev/bpfd/pkg/runtime/mapview"
)

// Bounds of an event reader: the records and bytes it holds for a consumer
// that reads slower than the program writes, and each CPU's perf buffer.
const (
	DefaultEventBuffer = 4096
	MaxEventBuffer     = 65536
	MaxEventBytes      = 16 << 20
	EventBatchBytes    = 1 << 20
	perfBufferPages    = 64
)

// EventOptions configure Events. The zero value holds DefaultEventBuffer
// records and does not decode them.
type EventOptions struct {
	// Buffer bounds the records held; 0 means DefaultEventBuffer, more
	// than MaxEventBuffer is ErrInvalid.
	Buffer int
	// RecordType, if set, decodes each record (its first bytes when it is
	// longer, as perf pads records to 8 bytes).
	RecordType btf.Type
}

// EventRecord is one record a program wrote.
type EventRecord struct {
	Data []byte
	// JSON is the record decoded with the record type; "" without one or
	// for a record shorter than it.
	JSON string
	// CPU is the CPU a perf event array's record came from.
	CPU int
}

// EventReader reads a ring buffer's or perf event array's records into a
// bounded buffer, dropping (and counting) what does not fit, so that a
// slow consumer never holds the program or bpfd up. Close it.
type EventReader struct {
	records    chan EventRecord
	recordType btf.Type
	size       int
	bytes      atomic.Int64
	lost       atomic.Uint64
	dropped    atomic.Uint64
	closeRd    func() error
	done       chan struct{}
	err        error
	release    func()
	closeOnce  sync.Once
}

// Events starts reading the records of a ring buffer or perf event array.
// One reader at a time may read a map: ErrConflict while another reads it
// (a ring buffer's records go to one consumer, a perf event array's
// buffers are the reader's own). ErrInvalid for a map of another type.
func (o *OpenMap) Events(opts EventOptions) (*EventReader, error) {
	n := opts.Buffer
	switch {
	case n == 0:
		n = DefaultEventBuffer
	case n < 0 || n > MaxEventBuffer:
		return nil, fmt.Errorf("event buffer %d: want 1 to %d: %w", n, MaxEventBuffer, ErrInvalid)
	}
	if o.Type != ebpf.RingBuf && o.Type != ebpf.PerfEventArray {
		return nil, fmt.Errorf("map %q: a %s map, not a ring buffer or perf event array: %w", o.Name, o.Type, ErrInvalid)
	}
	r := &EventReader{records: make(chan EventRecord, n), recordType: opts.RecordType, done: make(chan struct{})}
	if t := opts.RecordType; t != nil {
		size, err := btf.Sizeof(t)
		if err != nil {
			return nil, fmt.Errorf("record type %s: %w: %v", mapview.TypeName(t), ErrInvalid, err)
		}
		r.size = size
	}
	release, err := o.mgr.claimReader(o.KernelID)
	if err != nil {
		return nil, fmt.Errorf("map %q: %w", o.Name, err)
	}
	r.release = release
	var read func() error
	if o.Type == ebpf.RingBuf {
		rd, err := ringbuf.NewReader(o.m)
		if err != nil {
			release()
			return nil, fmt.Errorf("map %q: ring buffer reader: %w", o.Name, err)
		}
		r.closeRd = rd.Close
		if err := skipWritten(rd); err != nil {
			rd.Close()
			release()
			return nil, fmt.Errorf("map %q: ring buffer reader: %w", o.Name, err)
		}
		read = func() error {
			var rec ringbuf.Record
			for {
				if err := rd.ReadInto(&rec); err != nil {
					return err
				}
				r.push(EventRecord{Data: append([]byte(nil), rec.RawSample...)})
			}
		}
	} else {
		rd, err := perf.NewReader(o.m, perfBufferPages*os.Getpagesize())
		if err != nil {
			release()
			return nil, fmt.Errorf("map %q: perf reader: %w", o.Name, err)
		}
		r.closeRd = rd.Close
		read = func() error {
			var rec perf.Record
			for {
				if err := rd.ReadInto(&rec); err != nil {
					return err
				}
				if rec.LostSamples > 0 {
					r.lost.Add(rec.LostSamples)
					continue
				}
				r.push(EventRecord{Data: append([]byte(nil), rec.RawSample...), CPU: rec.CPU})
			}
		}
	}
	go func() {
		defer close(r.done)
		if err := read(); err != nil && !errors.Is(err, os.ErrClosed) {
			r.err = fmt.Errorf("map %q: read: %w", o.Name, err)
		}
	}()
	return r, nil
}

// skipWritten consumes the records a ring buffer held before the reader
// started (written while nobody read it), so that a reader sees what is
// written from its start on, as a new perf reader does.
func skipWritten(rd *ringbuf.Reader) error {
	rd.SetDeadline(time.Now())
	defer rd.SetDeadline(time.Time{})
	var rec ringbuf.Record
	for {
		err := rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// push queues rec, or drops and counts it when the buffer is full.
func (r *EventReader) push(rec EventRecord) {
	n := int64(len(rec.Data))
	if r.bytes.Add(n) > MaxEventBytes {
		r.bytes.Add(-n)
		r.dropped.Add(1)
		return
	}
	select {
	case r.records <- rec:
	default:
		r.bytes.Add(-n)
		r.dropped.Add(1)
	}
}

// Lost counts the records the kernel could not write to a perf event
// array's buffers; Dropped those read but dropped because the consumer
// did not keep up. Both since the reader started.
func (r *EventReader) Lost() uint64    { return r.lost.Load() }
func (r *EventReader) Dropped() uint64 { return r.dropped.Load() }

// Next returns up to max records, and no more than EventBatchBytes of
// them after the first: it waits for the first until wait has passed (then
// returning none) or ctx is done, and takes the others that are there. It
// returns the reader's error once reading stopped.
func (r *EventReader) Next(ctx context.Context, max int, wait time.Duration) ([]EventRecord, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var out []EventRecord
	select {
	case rec := <-r.records:
		out = append(out, r.decoded(rec))
	case <-r.done:
		// Records read before the reader stopped still go out.
		select {
		case rec := <-r.records:
			out = append(out, r.decoded(rec))
		default:
			if r.err != nil {
				return nil, r.err
			}
			return nil, fmt.Errorf("event reader: %w", os.ErrClosed)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, nil
	}
	size := len(out[0].Data)
	for len(out) < max && size < EventBatchBytes {
		select {
		case rec := <-r.records:
			out = append(out, r.decoded(rec))
			size += len(rec.Data)
		default:
			return out, nil
		}
	}
	return out, nil
}

func (r *EventReader) decoded(rec EventRecord) EventRecord {
	r.bytes.Add(-int64(len(rec.Data)))
	if r.recordType != nil && len(rec.Data) >= r.size {
		if j, err := mapview.JSON(r.recordType, rec.Data[:r.size]); err == nil {
			rec.JSON = string(j)
		}
	}
	return rec
}

// Close stops reading and lets another reader read the map.
func (r *EventReader) Close() error {
	var err error
	r.closeOnce.Do(func() {
		err = r.closeRd()
		<-r.done
		r.release()
	})
	return err
}

// claimReader marks map id as read, or fails with ErrConflict when it is.
func (m *Manager) claimReader(id uint32) (func(), error) {
	m.readersMu.Lock()
	defer m.readersMu.Unlock()
	if m.readers[id] {
		return nil, fmt.Errorf("another client is reading its events: %w", ErrConflict)
	}
	if m.readers == nil {
		m.readers = map[uint32]bool{}
	}
	m.readers[id] = true
	return func() {
		m.readersMu.Lock()
		defer m.readersMu.Unlock()
		delete(m.readers, id)
	}, nil
}
