package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// eventJSON is one line of `bpfctl events -o json`: a record, or, when
// bpfd reports more lost or dropped records, a line with only the counts
// (since the stream began).
type eventJSON struct {
	APIVersion string `json:"apiVersion"`
	// Data is the record's bytes in hex; Record its decoding with the
	// record type, when there is one.
	Data   string          `json:"data,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`
	CPU    *uint32         `json:"cpu,omitempty"`
	// Lost counts records the kernel could not write (perf event arrays);
	// Dropped records bpfd dropped because the client was slow.
	Lost    *uint64 `json:"lost,omitempty"`
	Dropped *uint64 `json:"dropped,omitempty"`
}

var eventsCommand = &cli.Command{
	Name: "events",
	Usage: "stream the records a program writes to a ring buffer or perf event array, one a line: " +
		"decoded with its BTF when the record type is known (--type, or the artifact's), in hex otherwise",
	ArgsUsage: "ID MAP",
	Flags: []cli.Flag{
		outputFlag,
		&cli.StringFlag{Name: "type", Usage: "the records' BTF type, e.g. \"struct event\" (default: the type the artifact names for MAP)", EnvVars: []string{"BPFCTL_EVENTS_TYPE"}},
		&cli.UintFlag{Name: "buffer", Usage: "records bpfd holds while the client is slow; more are dropped and counted (default 4096, at most 65536)", EnvVars: []string{"BPFCTL_EVENTS_BUFFER"}},
		&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "stop after this many records (default: until interrupted)", EnvVars: []string{"BPFCTL_EVENTS_COUNT"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until interrupted)", EnvVars: []string{"BPFCTL_EVENTS_DURATION"}},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return cliutil.Usagef("events: want a program id and a map name, got %d arguments", c.NArg())
		}
		ids, err := parseIDs(c.Args().Slice()[:1])
		if err != nil {
			return err
		}
		asJSON, err := jsonOutput(c)
		if err != nil {
			return err
		}
		count := c.Int("count")
		if count < 0 || c.Duration("duration") < 0 {
			return cliutil.Usagef("--count and --duration take positive values")
		}
		conn, _, err := connect(c)
		if err != nil {
			return err
		}
		defer conn.Close()
		// The stream lasts as long as events runs: --timeout bounds its
		// start, not the whole.
		ctx, cancel := context.WithCancel(c.Context)
		defer cancel()
		if d := c.Duration("duration"); d > 0 {
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		what := fmt.Sprintf("events %d %s", ids[0], c.Args().Get(1))
		stream, err := conn.Events(ctx, &bpfdv1.EventsRequest{Id: ids[0], Map: c.Args().Get(1), RecordType: c.String("type"), Buffer: uint32(c.Uint("buffer"))})
		if err != nil {
			return requestFailed(what, conn.socket, err)
		}
		first, err := recvEventsWithin(stream, c.Duration("timeout"))
		if err != nil {
			return requestFailed(what, conn.socket, err)
		}
		desc := "raw records in hex"
		if t := first.GetRecordType(); t != "" {
			desc = "records decoded as " + t
		}
		fmt.Fprintf(c.App.ErrWriter, "streaming %s map %s of program %d: %s\n", first.GetMap().GetMapType(), c.Args().Get(1), ids[0], desc)
		var n int
		var lost, dropped uint64
		for count == 0 || n < count {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				break
			}
			if err != nil {
				return requestFailed(what, conn.socket, err)
			}
			for _, r := range resp.GetRecords() {
				if count > 0 && n == count {
					break
				}
				n++
				if err := printEvent(c.App.Writer, r, first.GetMap().GetMapType() == "PerfEventArray", asJSON); err != nil {
					return err
				}
			}
			if l, d := resp.GetLost(), resp.GetDropped(); l != lost || d != dropped {
				lost, dropped = l, d
				if asJSON {
					if err := writeJSONLine(c.App.Writer, eventJSON{APIVersion: jsonAPIVersion, Lost: &l, Dropped: &d}); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(c.App.ErrWriter, "%d records lost by the kernel, %d dropped by bpfd (client too slow)\n", l, d)
				}
			}
		}
		return nil
	},
}

func printEvent(w io.Writer, r *bpfdv1.EventRecord, perf, asJSON bool) error {
	if asJSON {
		e := eventJSON{APIVersion: jsonAPIVersion, Data: hex.EncodeToString(r.GetData())}
		if r.GetJson() != "" {
			e.Record = json.RawMessage(r.GetJson())
		}
		if perf {
			cpu := r.GetCpu()
			e.CPU = &cpu
		}
		return writeJSONLine(w, e)
	}
	if r.GetJson() != "" {
		_, err := fmt.Fprintln(w, r.GetJson())
		return err
	}
	_, err := fmt.Fprintln(w, hex.EncodeToString(r.GetData()))
	return err
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// recvEventsWithin receives the stream's first response, giving up after d.
func recvEventsWithin(stream bpfdv1.Bpfd_EventsClient, d time.Duration) (*bpfdv1.EventsResponse, error) {
	type result struct {
		r   *bpfdv1.EventsResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := stream.Recv()
		ch <- result{r, err}
	}()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-time.After(d):
		return nil, fmt.Errorf("no answer within %s: %w", d, context.DeadlineExceeded)
	}
}
