package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fallacies/fallacies/faults/container"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/topology"
)

func cmdReset(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "reset", "[flags]", "remove the faults a run left behind (after a crash)")
	target := fs.String("target", "", "endpoints file of the running system (its journal is FILE.journal)")
	api := fs.String("toxiproxy-api", "", "Toxiproxy API URL (instead of --target)")
	journalPath := fs.String("journal", "", "fault journal (default: the target's)")
	all := fs.Bool("all", false, "also remove every toxic on that Toxiproxy and enable every proxy, journaled or not")
	allowRemote := fs.Bool("allow-remote", false, "allow a Toxiproxy that is not on loopback")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("unexpected argument %q", pos[0])
	}
	if *target != "" {
		ep, err := topology.LoadEndpoints(*target)
		if err != nil {
			return usageErr("--target: %v", err)
		}
		if *api == "" {
			*api = ep.ToxiproxyAPI
		}
		if *journalPath == "" {
			*journalPath = journalFor(*target)
		}
	}
	if *api == "" {
		return usageErr("say which Toxiproxy: --target FILE or --toxiproxy-api URL")
	}
	if err := checkLoopback([]string{*api}, *allowRemote); err != nil {
		return err
	}
	var journal *toxiproxy.Journal
	if *journalPath != "" {
		if _, err := os.Stat(*journalPath); err == nil || *all {
			if journal, err = toxiproxy.OpenJournal(*journalPath); err != nil {
				return testbedErr(err)
			}
			defer journal.Close()
		} else if !*all {
			fmt.Fprintf(e.stdout, "no journal at %s: nothing to reset (use --all to clear every toxic)\n", *journalPath)
			return nil
		}
	} else if !*all {
		return usageErr("without a journal only --all can reset: pass --target FILE, --journal FILE or --all")
	}
	removed, err := toxiproxy.Reset(ctx, *api, journal, *all)
	if err != nil {
		return testbedErr(err)
	}
	fmt.Fprintf(e.stdout, "reset %s: removed %d fault(s); every proxy enabled\n", *api, removed)
	// Container faults of the compose topology are journaled beside.
	if cpath := *journalPath + ".containers"; *journalPath != "" {
		if _, err := os.Stat(cpath); err == nil {
			cj, err := container.OpenJournal(cpath)
			if err != nil {
				return testbedErr(err)
			}
			defer cj.Close()
			n, err := container.Reset(ctx, cj)
			if err != nil {
				return testbedErr(err)
			}
			fmt.Fprintf(e.stdout, "reset containers: removed %d container fault(s)\n", n)
		}
	}
	return nil
}
