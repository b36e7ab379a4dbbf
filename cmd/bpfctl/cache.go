package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bpfd-dev/bpfd/internal/cliutil"
	bpfdv1 "github.com/bpfd-dev/bpfd/proto/bpfd/v1"
)

var cacheCommand = &cli.Command{
	Name:  "cache",
	Usage: "list or prune bpfd's artifact cache (root and bpfd's admin groups only)",
	Subcommands: []*cli.Command{
		{
			Name:  "list",
			Usage: "list the cached artifacts with the names they were fetched from and the programs loaded from them",
			Flags: []cli.Flag{outputFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return cliutil.Usagef("cache list takes no arguments")
				}
				asJSON, err := jsonOutput(c)
				if err != nil {
					return err
				}
				conn, ctx, err := connect(c)
				if err != nil {
					return err
				}
				defer conn.Close()
				resp, err := conn.ListCache(ctx, &bpfdv1.ListCacheRequest{})
				if err != nil {
					return requestFailed("cache list", conn.socket, err)
				}
				out := cacheListJSON{APIVersion: jsonAPIVersion, Size: resp.GetSize(), MaxSize: resp.GetMaxSize(), Entries: newCacheEntries(resp.GetEntries())}
				if asJSON {
					return cliutil.WriteJSON(c.App.Writer, out)
				}
				printCacheTable(c.App.Writer, out.Entries)
				limit := "no limit"
				if out.MaxSize > 0 {
					limit = "limit " + formatBytes(out.MaxSize)
				}
				fmt.Fprintf(c.App.Writer, "%d artifacts, %s (%s)\n", len(out.Entries), formatBytes(out.Size), limit)
				return nil
			},
		},
		{
			Name:  "prune",
			Usage: "remove cached artifacts no loaded program needs: the least recently used until within the size limit, or with --all every one",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every artifact no loaded program needs"},
				outputFlag,
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return cliutil.Usagef("cache prune takes no arguments")
				}
				asJSON, err := jsonOutput(c)
				if err != nil {
					return err
				}
				conn, ctx, err := connect(c)
				if err != nil {
					return err
				}
				defer conn.Close()
				resp, err := conn.PruneCache(ctx, &bpfdv1.PruneCacheRequest{All: c.Bool("all")})
				if err != nil {
					return requestFailed("cache prune", conn.socket, err)
				}
				out := cachePruneJSON{APIVersion: jsonAPIVersion, Removed: newCacheEntries(resp.GetRemoved()), Freed: resp.GetFreed(), Size: resp.GetSize()}
				if asJSON {
					return cliutil.WriteJSON(c.App.Writer, out)
				}
				for _, e := range out.Removed {
					fmt.Fprintf(c.App.Writer, "removed %s %s\n", e.Digest, strings.Join(originNames(e), ","))
				}
				fmt.Fprintf(c.App.Writer, "removed %d artifacts, freed %s; the cache holds %s\n", len(out.Removed), formatBytes(out.Freed), formatBytes(out.Size))
				return nil
			},
		},
	},
}

// cacheListJSON is what cache list prints with --output json.
type cacheListJSON struct {
	APIVersion string           `json:"apiVersion"`
	Size       uint64           `json:"size"`
	MaxSize    uint64           `json:"maxSize,omitempty"`
	Entries    []cacheEntryJSON `json:"entries"`
}

// cachePruneJSON is what cache prune prints with --output json.
type cachePruneJSON struct {
	APIVersion string           `json:"apiVersion"`
	Removed    []cacheEntryJSON `json:"removed"`
	Freed      uint64           `json:"freed"`
	Size       uint64           `json:"size"`
}

type cacheEntryJSON struct {
	Digest     string            `json:"digest"`
	MediaType  string            `json:"mediaType,omitempty"`
	Size       uint64            `json:"size"`
	Complete   bool              `json:"complete"`
	UsedAt     *time.Time        `json:"usedAt,omitempty"`
	Origins    []cacheOriginJSON `json:"origins,omitempty"`
	ProgramIDs []uint64          `json:"programIds,omitempty"`
}

type cacheOriginJSON struct {
	Name              string     `json:"name"`
	PulledAt          *time.Time `json:"pulledAt,omitempty"`
	Decision          string     `json:"decision,omitempty"`
	Reason            string     `json:"reason,omitempty"`
	Rule              string     `json:"rule,omitempty"`
	PolicyFingerprint string     `json:"policyFingerprint,omitempty"`
	Signers           []string   `json:"signers,omitempty"`
}

func newCacheEntries(es []*bpfdv1.CacheEntry) []cacheEntryJSON {
	out := make([]cacheEntryJSON, 0, len(es))
	for _, e := range es {
		j := cacheEntryJSON{Digest: e.GetDigest(), MediaType: e.GetMediaType(), Size: e.GetSize(), Complete: e.GetComplete(), ProgramIDs: e.GetProgramIds()}
		if e.GetUsedAt() != nil {
			t := e.GetUsedAt().AsTime()
			j.UsedAt = &t
		}
		for _, o := range e.GetOrigins() {
			oj := cacheOriginJSON{Name: o.GetName(), Decision: o.GetDecision(), Reason: o.GetReason(), Rule: o.GetRule(),
				PolicyFingerprint: o.GetPolicyFingerprint(), Signers: o.GetSigners()}
			if o.GetPulledAt() != nil {
				t := o.GetPulledAt().AsTime()
				oj.PulledAt = &t
			}
			j.Origins = append(j.Origins, oj)
		}
		out = append(out, j)
	}
	return out
}

// printCacheTable prints one line per artifact and origin.
func printCacheTable(w io.Writer, entries []cacheEntryJSON) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tCOMPLETE\tUSED\tPROGRAMS\tORIGIN\tDECISION")
	for _, e := range entries {
		used, programs := "-", "-"
		if e.UsedAt != nil {
			used = e.UsedAt.Local().Format(time.RFC3339)
		}
		if len(e.ProgramIDs) > 0 {
			ids := make([]string, len(e.ProgramIDs))
			for i, id := range e.ProgramIDs {
				ids[i] = strconv.FormatUint(id, 10)
			}
			programs = strings.Join(ids, ",")
		}
		origins := e.Origins
		if len(origins) == 0 {
			origins = []cacheOriginJSON{{Name: "-"}}
		}
		for i, o := range origins {
			decision := orDash(o.Decision)
			if o.Reason != "" {
				decision += " (" + o.Reason + ")"
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\n", shortDigest(e.Digest), formatBytes(e.Size), e.Complete, used, programs, o.Name, decision)
			} else {
				fmt.Fprintf(tw, "\t\t\t\t\t%s\t%s\n", o.Name, decision)
			}
		}
	}
	tw.Flush()
}

func originNames(e cacheEntryJSON) []string {
	var out []string
	for _, o := range e.Origins {
		out = append(out, o.Name)
	}
	return out
}

// formatBytes writes n with a binary unit: 1.5 MiB.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
