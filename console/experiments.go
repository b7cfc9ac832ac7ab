package console

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// experimentRunner runs one catalogue experiment at a time for the page.
type experimentRunner struct {
	names []string
	run   func(ctx context.Context, name string, progress func(string)) (string, error)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	view   experimentView
}

// experimentView is the page's experiment panel.
type experimentView struct {
	Catalogue []string  `json:"catalogue"`
	Name      string    `json:"name,omitempty"` // the one running or last run
	Running   bool      `json:"running"`
	Started   time.Time `json:"started,omitzero"`
	Progress  string    `json:"progress,omitempty"` // its latest progress line
	Report    string    `json:"report,omitempty"`   // URL of its report once it ended
	Error     string    `json:"error,omitempty"`
}

func newExperimentRunner(names []string, run func(context.Context, string, func(string)) (string, error)) *experimentRunner {
	if run == nil {
		names = nil
	}
	return &experimentRunner{names: names, run: run, view: experimentView{Catalogue: slices.Clone(names)}}
}

// start runs the named experiment in the background.
func (e *experimentRunner) start(name string) error {
	if !slices.Contains(e.names, name) {
		if len(e.names) == 0 {
			return badf("this console runs no experiments")
		}
		return badf("experiment %q: not in the catalogue (GET /api/state lists it under experiment.catalogue)", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		return &conflict{"experiment " + e.view.Name + " is running: stop it first (DELETE /api/experiment)"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.cancel, e.done = cancel, done
	e.view = experimentView{Catalogue: e.view.Catalogue, Name: name, Running: true, Started: time.Now()}
	go func() {
		defer close(done)
		dir, err := e.run(ctx, name, func(line string) {
			e.mu.Lock()
			e.view.Progress = line
			e.mu.Unlock()
		})
		e.mu.Lock()
		defer e.mu.Unlock()
		e.view.Running = false
		if dir != "" {
			e.view.Report = "/reports/" + filepath.Base(dir) + "/report.html"
		}
		if err != nil {
			e.view.Error = err.Error()
			if errors.Is(err, context.Canceled) {
				e.view.Error = "stopped from the page"
			}
		}
		e.cancel, e.done = nil, nil
		cancel()
	}()
	return nil
}

// stop ends the running experiment, if any, and waits for its teardown
// (its faults removed, its report written).
func (e *experimentRunner) stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (e *experimentRunner) state() experimentView {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.view
	v.Catalogue = slices.Clone(v.Catalogue)
	if v.Catalogue == nil {
		v.Catalogue = []string{}
	}
	return v
}
