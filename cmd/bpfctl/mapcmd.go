package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// maxDumpEntries bounds what `bpfctl map dump` fetches, page by page, unless
// --max says otherwise.
const maxDumpEntries = 100000

// mapDumpJSON is `bpfctl map dump -o json` (and, with one entry, `map
// get`).
type mapDumpJSON struct {
	APIVersion string         `json:"apiVersion"`
	Program    uint64         `json:"program"`
	Map        string         `json:"map"`
	Info       mapInfoJSON    `json:"info"`
	Entries    []mapEntryJSON `json:"entries"`
	// Truncated says --max stopped the dump before the map's end.
	Truncated bool `json:"truncated,omitempty"`
}

type mapInfoJSON struct {
	KernelID   uint32 `json:"kernelID"`
	Type       string `json:"type"`
	KeySize    uint32 `json:"keySize"`
	ValueSize  uint32 `json:"valueSize"`
	MaxEntries uint32 `json:"maxEntries"`
	KeyType    string `json:"keyType,omitempty"`
	ValueType  string `json:"valueType,omitempty"`
	PerCPU     bool   `json:"perCPU,omitempty"`
}

// mapEntryJSON is a key and value: decoded with the map's BTF where it has
// one (Key, Value), and in hex. A per-CPU value asked per CPU, or that
// does not sum, is a list with one value per CPU.
type mapEntryJSON struct {
	Key         json.RawMessage `json:"key,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	KeyHex      string          `json:"keyHex"`
	ValueHex    string          `json:"valueHex,omitempty"`
	PerCPUHexes []string        `json:"perCPUHex,omitempty"`
}

func newMapInfo(d *bpfdv1.MapDescription) mapInfoJSON {
	return mapInfoJSON{KernelID: d.GetKernelId(), Type: d.GetMapType(), KeySize: d.GetKeySize(), ValueSize: d.GetValueSize(),
		MaxEntries: d.GetMaxEntries(), KeyType: d.GetKeyType(), ValueType: d.GetValueType(), PerCPU: d.GetPerCpu()}
}

func newMapEntry(e *bpfdv1.MapEntry) mapEntryJSON {
	out := mapEntryJSON{KeyHex: hex.EncodeToString(e.GetKey()), ValueHex: hex.EncodeToString(e.GetValue())}
	if e.GetKeyJson() != "" {
		out.Key = json.RawMessage(e.GetKeyJson())
	}
	if e.GetValueJson() != "" {
		out.Value = json.RawMessage(e.GetValueJson())
	}
	for _, v := range e.GetPerCpuValues() {
		out.PerCPUHexes = append(out.PerCPUHexes, hex.EncodeToString(v))
	}
	return out
}

var perCPUFlag = &cli.BoolFlag{Name: "per-cpu", Usage: "show a per-CPU map's values per CPU rather than summed"}

var mapCommand = &cli.Command{
	Name:  "map",
	Usage: "read and write the maps of a program bpfd loaded, decoded with their BTF",
	Subcommands: []*cli.Command{
		{
			Name:      "dump",
			Usage:     "print every entry of a map, keys and values decoded with the program's BTF",
			ArgsUsage: "ID MAP",
			Flags: []cli.Flag{outputFlag, perCPUFlag,
				&cli.IntFlag{Name: "max", Value: maxDumpEntries, Usage: "print at most this many entries"}},
			Action: mapDump,
		},
		{
			Name:      "get",
			Usage:     "print one entry; KEY is JSON for the key's BTF type (a number, an enum name, a string, an object) or 0x-prefixed hex bytes",
			ArgsUsage: "ID MAP KEY",
			Flags:     []cli.Flag{outputFlag, perCPUFlag},
			Action:    mapGet,
		},
		{
			Name:      "update",
			Usage:     "write one entry (only the program's owner, root or an admin may); KEY and VALUE as for get",
			ArgsUsage: "ID MAP KEY VALUE",
			Action:    mapUpdate,
		},
		{
			Name:      "delete",
			Usage:     "remove one entry (only the program's owner, root or an admin may)",
			ArgsUsage: "ID MAP KEY",
			Action:    mapDelete,
		},
	},
}

// mapArgs reads ID MAP and n further arguments.
func mapArgs(c *cli.Context, cmd string, n int) (uint64, string, []string, error) {
	if c.NArg() != 2+n {
		return 0, "", nil, cliutil.Usagef("map %s: want %d arguments (%s), got %d", cmd, 2+n, c.Command.ArgsUsage, c.NArg())
	}
	ids, err := parseIDs(c.Args().Slice()[:1])
	if err != nil {
		return 0, "", nil, err
	}
	return ids[0], c.Args().Get(1), c.Args().Slice()[2:], nil
}

// rawOrJSON splits a KEY or VALUE argument: 0x-prefixed hex is raw bytes,
// anything else JSON for the BTF type.
func rawOrJSON(s string) ([]byte, string) {
	if h, ok := strings.CutPrefix(s, "0x"); ok && len(h)%2 == 0 && len(h) > 0 {
		if b, err := hex.DecodeString(h); err == nil {
			return b, ""
		}
	}
	if !json.Valid([]byte(s)) {
		// A bare word is an enum value's name or a string.
		b, _ := json.Marshal(s)
		return nil, string(b)
	}
	return nil, s
}

func mapDump(c *cli.Context) error {
	id, name, _, err := mapArgs(c, "dump", 0)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	limit := c.Int("max")
	if limit <= 0 {
		return cliutil.Usagef("--max takes a positive number")
	}
	conn, ctx, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	out := mapDumpJSON{APIVersion: jsonAPIVersion, Program: id, Map: name, Entries: []mapEntryJSON{}}
	var after []byte
	for {
		resp, err := conn.MapDump(ctx, &bpfdv1.MapDumpRequest{Id: id, Map: name, StartAfter: after, PerCpu: c.Bool("per-cpu"),
			MaxEntries: uint32(min(limit-len(out.Entries), 10000))})
		if err != nil {
			return requestFailed(fmt.Sprintf("map dump %d %s", id, name), conn.socket, err)
		}
		out.Info = newMapInfo(resp.GetMap())
		for _, e := range resp.GetEntries() {
			out.Entries = append(out.Entries, newMapEntry(e))
			after = e.GetKey()
		}
		if !resp.GetMore() || len(resp.GetEntries()) == 0 {
			break
		}
		if len(out.Entries) >= limit {
			out.Truncated = true
			break
		}
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, out)
	}
	printEntries(c.App.Writer, out.Entries)
	if out.Truncated {
		fmt.Fprintf(c.App.ErrWriter, "stopped after %d entries (--max)\n", len(out.Entries))
	}
	return nil
}

// printEntries prints "key: value" lines, decoded where the map has BTF.
func printEntries(w io.Writer, es []mapEntryJSON) {
	for _, e := range es {
		k, v := string(e.Key), string(e.Value)
		if k == "" {
			k = e.KeyHex
		}
		if v == "" {
			v = e.ValueHex
			if len(e.PerCPUHexes) > 0 {
				v = "[" + strings.Join(e.PerCPUHexes, ", ") + "]"
			}
		}
		fmt.Fprintf(w, "%s: %s\n", k, v)
	}
}

func mapGet(c *cli.Context) error {
	id, name, args, err := mapArgs(c, "get", 1)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	key, keyJSON := rawOrJSON(args[0])
	conn, ctx, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := conn.MapGet(ctx, &bpfdv1.MapGetRequest{Id: id, Map: name, Key: key, KeyJson: keyJSON, PerCpu: c.Bool("per-cpu")})
	if err != nil {
		return requestFailed(fmt.Sprintf("map get %d %s %s", id, name, args[0]), conn.socket, err)
	}
	e := newMapEntry(resp.GetEntry())
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, mapDumpJSON{APIVersion: jsonAPIVersion, Program: id, Map: name, Info: newMapInfo(resp.GetMap()), Entries: []mapEntryJSON{e}})
	}
	printEntries(c.App.Writer, []mapEntryJSON{e})
	return nil
}

func mapUpdate(c *cli.Context) error {
	id, name, args, err := mapArgs(c, "update", 2)
	if err != nil {
		return err
	}
	key, keyJSON := rawOrJSON(args[0])
	value, valueJSON := rawOrJSON(args[1])
	conn, ctx, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.MapUpdate(ctx, &bpfdv1.MapUpdateRequest{Id: id, Map: name, Key: key, KeyJson: keyJSON, Value: value, ValueJson: valueJSON}); err != nil {
		return requestFailed(fmt.Sprintf("map update %d %s %s", id, name, args[0]), conn.socket, err)
	}
	return nil
}

func mapDelete(c *cli.Context) error {
	id, name, args, err := mapArgs(c, "delete", 1)
	if err != nil {
		return err
	}
	key, keyJSON := rawOrJSON(args[0])
	conn, ctx, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.MapDelete(ctx, &bpfdv1.MapDeleteRequest{Id: id, Map: name, Key: key, KeyJson: keyJSON}); err != nil {
		return requestFailed(fmt.Sprintf("map delete %d %s %s", id, name, args[0]), conn.socket, err)
	}
	return nil
}
