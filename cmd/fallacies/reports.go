package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/fallacies/fallacies/experiments/report"
)

// reportsUsage is the usage of `fallacies reports` without a subcommand.
const reportsUsage = `Usage: fallacies reports prune --keep N [--dir reports] [--dry-run]

Manage the report folders runs leave behind.

Subcommands:
  prune   keep the N newest report folders and delete the older ones

Run "fallacies reports prune --help" for its flags.
`

func cmdReports(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, reportsUsage)
		return errSilent(exitUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, reportsUsage)
		return nil
	case "prune":
		return cmdReportsPrune(ctx, e, args[1:])
	}
	return usageErr("unknown subcommand %q: want prune (run `fallacies reports --help`)", args[0])
}

func cmdReportsPrune(_ context.Context, e *env, args []string) error {
	flags := newFlags(e, "reports prune", "--keep N [--dir reports] [--dry-run]",
		"keep the N newest report folders in --dir and delete the older ones; only folders the runner wrote (a name like latency-20260314-092653 holding a report.json) are touched")
	keep := flags.String("keep", "", "keep the `N` newest report folders (required, 0 or more)")
	dir := flags.String("dir", "reports", "the folder holding the report folders")
	dryRun := flags.Bool("dry-run", false, "say what would be removed, remove nothing")
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("unexpected argument %q: the folder is given with --dir", pos[0])
	}
	if *keep == "" {
		return usageErr("--keep N is required: how many of the newest report folders to keep")
	}
	n, err := strconv.Atoi(*keep)
	if err != nil || n < 0 {
		return usageErr("--keep %q: want a whole number, 0 or more", *keep)
	}
	if info, err := os.Stat(*dir); err != nil || !info.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return usageErr("--dir %s: no such folder", *dir)
		}
		return usageErr("--dir %s: %v", *dir, err)
	}
	res, err := report.Prune(*dir, n, *dryRun)
	verb := "removed"
	if *dryRun {
		verb = "would remove"
	}
	var freed int64
	for _, f := range res.Removed {
		freed += f.Bytes
		fmt.Fprintf(e.stdout, "%s %s (%s, started %s)\n", verb, f.Path, fmtBytes(f.Bytes), f.StartedAt())
	}
	fmt.Fprintf(e.stdout, "%s: kept %s, %s %s (%s)", *dir, folders(len(res.Kept)), verb, folders(len(res.Removed)), fmtBytes(freed))
	if len(res.Others) > 0 {
		other := fmt.Sprintf("%d other entries", len(res.Others))
		if len(res.Others) == 1 {
			other = "1 other entry"
		}
		fmt.Fprintf(e.stdout, "; left alone %s that %s not a Fallacies report", other, map[bool]string{true: "is", false: "are"}[len(res.Others) == 1])
	}
	fmt.Fprintln(e.stdout)
	if err != nil {
		return testbedErr(err)
	}
	return nil
}

// fmtBytes formats a size: 512 B, 45.0 KB, 4.2 MB.
func fmtBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
}

func folders(n int) string {
	if n == 1 {
		return "1 report folder"
	}
	return fmt.Sprintf("%d report folders", n)
}
