package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/container"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
	"github.com/fallacies/fallacies/topology"
)

// cmdReset removes the faults a run left behind. It reads the journal
// before it touches anything, never creates one and never writes to a file
// that is not one, and says what it reached: each line of its output is
// something it did or found; an API it could not reach is exit 3.
func cmdReset(ctx context.Context, e *env, args []string) error {
	flags := newFlags(e, "reset", "[flags]", "remove the faults a run left behind (after a crash)")
	target := flags.String("target", "", "endpoints file of the running system (its journal is FILE.journal)")
	api := flags.String("toxiproxy-api", "", "Toxiproxy API URL (instead of --target)")
	journalPath := flags.String("journal", "", "fault journal (default: the target's); a file that is not one is refused and left untouched")
	all := flags.Bool("all", false, "also remove every toxic on that Toxiproxy and enable every proxy, journaled or not")
	allowRemote := flags.Bool("allow-remote", false, "allow a Toxiproxy that is not on loopback")
	pos, err := parse(flags, args)
	if err != nil {
		return err
	}
	if err := noArgs("reset", pos); err != nil {
		return err
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
	if err := checkAddr("--toxiproxy-api", *api, false); err != nil {
		return err
	}
	if err := checkLoopback([]string{*api}, *allowRemote); err != nil {
		return err
	}
	if *journalPath == "" && !*all {
		return usageErr("without a journal only --all can reset: pass --target FILE, --journal FILE or --all")
	}

	// Read and check every journal before anything is touched.
	var (
		journal         *toxiproxy.Journal
		here, elsewhere int // outstanding faults at this API, at others
	)
	if *journalPath != "" {
		err := checkJournal(*journalPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !*all {
				fmt.Fprintf(e.stdout, "no journal at %s: no run left faults to reset; the Toxiproxy API was not contacted (--all clears every toxic)\n", *journalPath)
				return nil
			}
			fmt.Fprintf(e.stdout, "no journal at %s: nothing journaled\n", *journalPath)
		case err != nil:
			return err
		default:
			if journal, err = toxiproxy.OpenJournal(*journalPath); err != nil {
				return testbedErr(err)
			}
			defer journal.Close()
			entries, err := journal.Outstanding()
			if err != nil {
				return testbedErr(err)
			}
			for _, en := range entries {
				if sameAPI(en.API, *api) {
					here++
				} else {
					elsewhere++
				}
			}
		}
	}
	var cj *container.Journal
	if cpath := *journalPath + ".containers"; *journalPath != "" {
		if err := checkJournal(cpath); err == nil {
			if cj, err = container.OpenJournal(cpath); err != nil {
				return testbedErr(err)
			}
			defer cj.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}

	removed, err := toxiproxy.Reset(ctx, *api, journal, false)
	if errors.Is(err, toxiproxy.ErrUnreachable) {
		if journal != nil {
			return testbedErr(fmt.Errorf("%w; nothing was removed: the journal %s still lists %d fault(s) for it", err, *journalPath, here))
		}
		return testbedErr(fmt.Errorf("%w; nothing was removed", err))
	}
	if journal != nil {
		fmt.Fprintf(e.stdout, "reset %s: removed %d fault(s) of the %d the journal %s listed as still on there\n", *api, removed, here, *journalPath)
		if elsewhere > 0 {
			fmt.Fprintf(e.stdout, "  %d journaled fault(s) are on another Toxiproxy: left alone\n", elsewhere)
		}
	}
	if err != nil {
		return testbedErr(err)
	}
	if *all {
		n, err := toxiproxy.Reset(ctx, *api, nil, true)
		if err != nil {
			return testbedErr(fmt.Errorf("%w (removed %d toxic(s) or disabled proxies before that)", err, n))
		}
		fmt.Fprintf(e.stdout, "reset %s --all: removed %d more toxic(s) or disabled proxies; every proxy is enabled and has no toxics\n", *api, n)
	}
	// Container faults of the compose topology are journaled beside.
	if cj != nil {
		n, err := container.Reset(ctx, cj)
		if err != nil {
			return testbedErr(fmt.Errorf("%w (removed %d container fault(s) before that)", err, n))
		}
		fmt.Fprintf(e.stdout, "reset containers: removed %d container fault(s) listed in %s\n", n, cj.Path())
	}
	return nil
}

// checkJournal reads the journal at path without writing to it: a file
// that is not one (a FIFO, a device, text, too large) is a usage error (exit
// 2) naming it and what it is; a missing one matches fs.ErrNotExist.
func checkJournal(path string) error {
	_, err := faults.ReadJournal(path)
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return err
	case errors.Is(err, faults.ErrNotJournal):
		return usageErr("%v (refused; nothing was written to it or reset)", err)
	}
	return usageErr("%v", err)
}

// sameAPI reports whether two Toxiproxy API addresses are the same.
func sameAPI(a, b string) bool {
	return toxiproxy.NewInjector(a, nil).URL() == toxiproxy.NewInjector(b, nil).URL()
}
