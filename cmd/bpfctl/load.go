package main

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

// loadFlags are the flags of both load commands.
var loadFlags = append([]cli.Flag{
	&cli.StringSliceFlag{Name: "program", Aliases: []string{"p"}, Usage: "program to load, NAME:TYPE (repeat for several), e.g. xdp_counter:xdp"},
	&cli.StringSliceFlag{Name: "global", Aliases: []string{"g"}, Usage: "override a global variable, NAME=HEX bytes (repeatable), e.g. verdict=01000000"},
	&cli.StringSliceFlag{Name: "metadata", Aliases: []string{"m"}, Usage: "label the programs, KEY=VALUE (repeatable), e.g. app=firewall"},
	&cli.Uint64Flag{Name: "map-owner-id", Usage: "use the maps of this loaded program instead of new ones"},
	&cli.StringFlag{Name: "pull-policy", Usage: "Always, IfNotPresent or Never (default: bpfd's)"},
	&cli.StringFlag{Name: "owner-config", Usage: "the config the programs belong to, the name pods give in their csi.bpfd.io volume (root and bpfd's admins only)"},
	&cli.StringFlag{Name: "owner-namespace", Usage: "the Kubernetes namespace the programs belong to (root and bpfd's admins only)"},
	&cli.StringSliceFlag{Name: "map-reader", Usage: "let pods of this Kubernetes namespace mount the programs' maps through csi.bpfd.io (repeatable; needs --owner-config)"},
	outputFlag,
}, attachFlags...)

var loadCommand = &cli.Command{
	Name:  "load",
	Usage: "load and attach programs from a signed image or a local file",
	Subcommands: []*cli.Command{
		{
			Name:      "image",
			Usage:     "load programs from a bytecode artifact (the node's trust policy decides)",
			ArgsUsage: "REF  (host/repo[:tag][@digest], oci:PATH[:tag][@digest] or oci-archive:FILE)",
			Flags:     loadFlags,
			Action:    func(c *cli.Context) error { return load(c, c.Args().First()) },
		},
		{
			Name:      "file",
			Usage:     "load programs from a local ELF object (only if the trust policy allows local files)",
			ArgsUsage: "PATH",
			Flags:     loadFlags,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cliutil.Usagef("load file: want exactly one PATH, got %d", c.NArg())
				}
				path, err := filepath.Abs(c.Args().First())
				if err != nil {
					return err
				}
				return load(c, "file:"+path)
			},
		},
	},
}

func load(c *cli.Context, ref string) error {
	if c.NArg() != 1 || ref == "" {
		return cliutil.Usagef("load %s: want exactly one reference, got %d", c.Command.Name, c.NArg())
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	req, err := loadRequest(c, ref)
	if err != nil {
		return err
	}
	conn, ctx, err := connect(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := conn.Load(ctx, req)
	if err != nil {
		return requestFailed("load", conn.socket, err)
	}
	if asJSON {
		return cliutil.WriteJSON(c.App.Writer, newProgramList(resp.GetPrograms()))
	}
	for _, p := range resp.GetPrograms() {
		fmt.Fprintf(c.App.Writer, "loaded %s (%s) as id %d: kernel program %d, %s\n",
			p.GetName(), p.GetType().Name(), p.GetId(), p.GetKernel().GetProgramId(), attachSummary(p.GetAttach()))
	}
	if prov := resp.GetPrograms()[0].GetProvenance(); prov.GetDigest() != "" {
		fmt.Fprintf(c.App.Writer, "digest %s, signer %s, rule %s\n", prov.GetDigest(), orNone(prov.GetSigner()), orNone(prov.GetRule()))
	}
	return nil
}

// loadRequest builds the request a load command line asks for.
func loadRequest(c *cli.Context, ref string) (*bpfdv1.LoadRequest, error) {
	type program struct {
		name string
		typ  bpfdv1.ProgramType
	}
	var programs []program
	var types []bpfdv1.ProgramType
	if len(c.StringSlice("program")) == 0 {
		return nil, cliutil.Usagef("load: name the programs to load with --program NAME:TYPE")
	}
	for _, s := range c.StringSlice("program") {
		name, typ, err := parseProgram(s)
		if err != nil {
			return nil, err
		}
		programs = append(programs, program{name, typ})
		types = append(types, typ)
	}
	attach, err := parseAttachFlags(c, types)
	if err != nil {
		return nil, err
	}
	pull, err := bpfdv1.ParsePullPolicy(c.String("pull-policy"))
	if err != nil {
		return nil, cliutil.Usagef("--pull-policy: %v", err)
	}
	metadata, err := parseKeyValues("metadata", c.StringSlice("metadata"))
	if err != nil {
		return nil, err
	}
	globals, err := parseGlobals(c.StringSlice("global"))
	if err != nil {
		return nil, err
	}
	owner, err := ownerFlags(c)
	if err != nil {
		return nil, err
	}
	req := &bpfdv1.LoadRequest{
		Bytecode:   &bpfdv1.Bytecode{Reference: ref, PullPolicy: pull},
		GlobalData: globals,
		Metadata:   metadata,
		MapOwnerId: c.Uint64("map-owner-id"),
		Owner:      owner,
	}
	for _, p := range programs {
		spec, err := attach.spec(p.typ)
		if err != nil {
			return nil, err
		}
		req.Programs = append(req.Programs, &bpfdv1.LoadProgram{Name: p.name, Type: p.typ, Attach: spec})
	}
	return req, nil
}

// parseGlobals parses --global NAME=HEX values.
func parseGlobals(values []string) (map[string][]byte, error) {
	globals := map[string][]byte{}
	for _, kv := range values {
		name, hexValue, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, cliutil.Usagef("--global %q: want NAME=HEX, e.g. verdict=01000000", kv)
		}
		b, err := hex.DecodeString(strings.TrimPrefix(hexValue, "0x"))
		if err != nil {
			return nil, cliutil.Usagef("--global %s: %q is not hex bytes: %v", name, hexValue, err)
		}
		globals[name] = b
	}
	return globals, nil
}

// parseIDs parses program ids given as arguments.
// ownerFlags returns the owner the load flags name, nil for none: bpfd then
// records the client's uid alone.
func ownerFlags(c *cli.Context) (*bpfdv1.Owner, error) {
	o := &bpfdv1.Owner{Config: c.String("owner-config"), Namespace: c.String("owner-namespace"), MapReaderNamespaces: c.StringSlice("map-reader")}
	if o.Config == "" && len(o.MapReaderNamespaces) > 0 {
		return nil, cliutil.Usagef("--map-reader needs --owner-config: a pod's csi.bpfd.io volume names the config whose maps it mounts")
	}
	if o.Config == "" && o.Namespace == "" {
		return nil, nil
	}
	return o, nil
}

func parseIDs(args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, cliutil.Usagef("program id %q: want a positive integer", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
