package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

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
	all := flags.Bool("all", false, "also remove every toxic on that Toxiproxy, enable every proxy, and take every packet or call-level layer of its layer host off its link and stop it, journaled or not")
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

	// Read and check the journal before anything is touched.
	var (
		rj              *runJournal
		here, elsewhere int // outstanding network faults at this API, at others
	)
	if *journalPath != "" {
		rj, err = openRunJournal(*journalPath)
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
			defer rj.close()
			for _, en := range rj.network {
				if sameAPI(en.At, *api) {
					here++
				} else {
					elsewhere++
				}
			}
		}
	}

	removed, err := toxiproxy.Reset(ctx, *api, rj.journal(), false)
	if errors.Is(err, toxiproxy.ErrUnreachable) {
		if rj != nil {
			return testbedErr(fmt.Errorf("%w; nothing was removed: the journal %s still lists %d fault(s) for it", err, *journalPath, here))
		}
		return testbedErr(fmt.Errorf("%w; nothing was removed", err))
	}
	if rj != nil {
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
			return testbedErr(fmt.Errorf("%w (removed %d toxic(s), disabled proxies or layers before that)", err, n))
		}
		fmt.Fprintf(e.stdout, "reset %s --all: removed %d more toxic(s), disabled proxies or layers; every proxy is enabled and has no toxics and no layer\n", *api, n)
	}
	return rj.resetContainers(ctx, e)
}

// resetJournal removes what the journal at path lists as still on, each
// network fault at the Toxiproxy it was applied to, then the container
// faults. The journal is read and every address checked before anything
// is touched.
func resetJournal(ctx context.Context, e *env, path string, allowRemote bool) error {
	rj, err := openRunJournal(path)
	if errors.Is(err, fs.ErrNotExist) {
		return usageErr("--journal %s: no such file", path)
	} else if err != nil {
		return err
	}
	defer rj.close()
	var apis []string
	listed := map[string]int{}
	for _, en := range rj.network {
		api := toxiproxy.NewInjector(en.At, nil).URL()
		if listed[api] == 0 {
			apis = append(apis, api)
		}
		listed[api]++
	}
	if err := checkLoopback(apis, allowRemote); err != nil {
		return err
	}
	if len(apis) == 0 {
		fmt.Fprintf(e.stdout, "the journal %s lists no network fault still on\n", path)
	}
	for _, api := range apis {
		removed, err := toxiproxy.Reset(ctx, api, rj.journal(), false)
		if err != nil {
			return testbedErr(fmt.Errorf("%w (removed %d of the %d fault(s) the journal %s listed as still on there)", err, removed, listed[api], path))
		}
		fmt.Fprintf(e.stdout, "reset %s: removed %d fault(s) of the %d the journal %s listed as still on there\n", api, removed, listed[api], path)
	}
	return rj.resetContainers(ctx, e)
}

// runJournal is the fault journal of a run, read and checked before
// anything is touched. A run of an older fallacies on compose journaled
// its container faults in a second file beside the first
// (FILE.containers); that file is read and reset too.
type runJournal struct {
	files      []*faults.Journal // the journal, then the older container journal if there is one
	network    []faults.Entry    // the network faults still on, of every file
	containers []bool            // per file: whether it ever journaled a container fault
}

// openRunJournal reads the journal at path (and the older container
// journal beside it), refuses what is not a journal or lists a fault of an
// injector this binary does not know, and opens it. A missing journal
// matches fs.ErrNotExist.
func openRunJournal(path string) (*runJournal, error) {
	paths := []string{path}
	legacy := path + ".containers"
	if _, err := os.Lstat(legacy); err == nil {
		paths = append(paths, legacy)
	}
	rj := &runJournal{}
	for _, p := range paths {
		recs, err := checkJournal(p)
		if err != nil {
			return nil, err
		}
		hasContainers := false
		for _, r := range recs {
			hasContainers = hasContainers || r.Op == faults.OpApply && r.Injector == container.Name
		}
		rj.containers = append(rj.containers, hasContainers)
		for _, en := range faults.Outstanding(recs) {
			switch en.Injector {
			case toxiproxy.Name:
				rj.network = append(rj.network, en)
			case container.Name:
			default:
				return nil, usageErr("%s: fault %q (id %s) was applied by the injector %q, which this fallacies does not know; nothing was reset: run the reset of the fallacies that applied it", p, en.Fault.Name, en.ID, en.Injector)
			}
		}
	}
	for _, p := range paths {
		j, err := faults.OpenJournal(p)
		if err != nil {
			rj.close()
			return nil, testbedErr(err)
		}
		rj.files = append(rj.files, j)
	}
	return rj, nil
}

// journal returns the run's journal, nil for none.
func (rj *runJournal) journal() *faults.Journal {
	if rj == nil {
		return nil
	}
	return rj.files[0]
}

func (rj *runJournal) close() {
	for _, j := range rj.files {
		j.Close()
	}
}

// resetContainers undoes the container faults the journal lists as still
// on; rj may be nil.
func (rj *runJournal) resetContainers(ctx context.Context, e *env) error {
	if rj == nil {
		return nil
	}
	for i, j := range rj.files {
		if !rj.containers[i] {
			continue
		}
		n, err := container.Reset(ctx, j)
		if err != nil {
			return testbedErr(fmt.Errorf("%w (removed %d container fault(s) before that)", err, n))
		}
		fmt.Fprintf(e.stdout, "reset containers: removed %d container fault(s) listed in %s\n", n, j.Path())
	}
	return nil
}

// checkJournal reads the journal at path without writing to it: a file
// that is not one (a FIFO, a device, text, too large) is a usage error (exit
// 2) naming it and what it is; a missing one matches fs.ErrNotExist.
func checkJournal(path string) ([]faults.Record, error) {
	recs, err := faults.ReadJournal(path)
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return recs, err
	case errors.Is(err, faults.ErrNotJournal):
		return nil, usageErr("%v (refused; nothing was written to it or reset)", err)
	}
	return nil, usageErr("%v", err)
}

// sameAPI reports whether two Toxiproxy API addresses are the same.
func sameAPI(a, b string) bool {
	return toxiproxy.NewInjector(a, nil).URL() == toxiproxy.NewInjector(b, nil).URL()
}
