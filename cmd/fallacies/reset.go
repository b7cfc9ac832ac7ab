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
	journalPath := flags.String("journal", "", "fault journal (default: the target's); a file that is not one is refused and left untouched. Alone, the faults it lists are removed where they were applied: reports/NAME-TIME/faults.journal of a run that started its own topology")
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
	if *api == "" && *journalPath == "" {
		return usageErr("say which Toxiproxy: --target FILE or --toxiproxy-api URL (or which run: --journal FILE)")
	}
	if *api == "" {
		// A run that started its own topology (processes, compose) has
		// no endpoints file: its journal, in its report folder, knows
		// where each fault went.
		if *all {
			return usageErr("--all needs the Toxiproxy: --target FILE or --toxiproxy-api URL")
		}
		return resetJournal(ctx, e, *journalPath, *allowRemote)
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
	if *journalPath != "" {
		if cj, err = openContainerJournal(*journalPath); err != nil {
			return err
		}
		if cj != nil {
			defer cj.Close()
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
	return resetContainers(ctx, e, cj)
}

// resetJournal removes what the journal at path lists as still on, each
// network fault at the Toxiproxy it was applied to, then the container
// faults journaled beside. Every journal is read and every address
// checked before anything is touched.
func resetJournal(ctx context.Context, e *env, path string, allowRemote bool) error {
	if err := checkJournal(path); errors.Is(err, fs.ErrNotExist) {
		return usageErr("--journal %s: no such file", path)
	} else if err != nil {
		return err
	}
	journal, err := toxiproxy.OpenJournal(path)
	if err != nil {
		return testbedErr(err)
	}
	defer journal.Close()
	entries, err := journal.Outstanding()
	if err != nil {
		return testbedErr(err)
	}
	var apis []string
	listed := map[string]int{}
	for _, en := range entries {
		api := toxiproxy.NewInjector(en.API, nil).URL()
		if listed[api] == 0 {
			apis = append(apis, api)
		}
		listed[api]++
	}
	if err := checkLoopback(apis, allowRemote); err != nil {
		return err
	}
	cj, err := openContainerJournal(path)
	if err != nil {
		return err
	}
	if cj != nil {
		defer cj.Close()
	}
	if len(apis) == 0 {
		fmt.Fprintf(e.stdout, "the journal %s lists no network fault still on\n", path)
	}
	for _, api := range apis {
		removed, err := toxiproxy.Reset(ctx, api, journal, false)
		if err != nil {
			return testbedErr(fmt.Errorf("%w (removed %d of the %d fault(s) the journal %s listed as still on there)", err, removed, listed[api], path))
		}
		fmt.Fprintf(e.stdout, "reset %s: removed %d fault(s) of the %d the journal %s listed as still on there\n", api, removed, listed[api], path)
	}
	return resetContainers(ctx, e, cj)
}

// openContainerJournal opens the container faults of the compose topology,
// journaled beside the network faults in JOURNAL.containers; nil when there
// is none.
func openContainerJournal(journalPath string) (*container.Journal, error) {
	cpath := journalPath + ".containers"
	if err := checkJournal(cpath); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	cj, err := container.OpenJournal(cpath)
	if err != nil {
		return nil, testbedErr(err)
	}
	return cj, nil
}

// resetContainers undoes what the container journal lists; cj may be nil.
func resetContainers(ctx context.Context, e *env, cj *container.Journal) error {
	if cj == nil {
		return nil
	}
	n, err := container.Reset(ctx, cj)
	if err != nil {
		return testbedErr(fmt.Errorf("%w (removed %d container fault(s) before that)", err, n))
	}
	fmt.Fprintf(e.stdout, "reset containers: removed %d container fault(s) listed in %s\n", n, cj.Path())
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
