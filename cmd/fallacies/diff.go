package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/fallacies/fallacies/experiments/compare"
	"github.com/fallacies/fallacies/experiments/report"
	"github.com/fallacies/fallacies/faults"
)

// maxReportBytes bounds a report.json diff reads.
const maxReportBytes = 256 << 20

func cmdDiff(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "diff", "[flags] BASE NEW", "compare two runs (report.json files, report folders, or folders of report folders such as reports/): per experiment, variant and phase, what changed and whether it is significant; a significant regression within every bound is a warning")
	all := fs.Bool("all", false, "list every figure compared, not only the significant ones")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErr("want two arguments, BASE and NEW, e.g. fallacies diff main-reports/ reports/ (see fallacies diff --help)")
	}
	bases, err := loadReports(pos[0])
	if err != nil {
		return err
	}
	news, err := loadReports(pos[1])
	if err != nil {
		return err
	}
	d := compare.Reports(bases, news)
	fmt.Fprintf(e.stdout, "fallacies diff %s → %s (%s, regression: significant at %.0f%% family-wise per variant and at least %.0f%% worse)\n\n",
		pos[0], pos[1], trialsNote(bases, news), 100*compare.Alpha, 100*compare.MinChange)
	return compare.Text(e.stdout, d, *all)
}

func trialsNote(bases, news []*report.Report) string {
	n := func(rs []*report.Report) int {
		if len(rs) == 0 {
			return 0
		}
		return max(rs[0].Trials, 1)
	}
	return fmt.Sprintf("base %d trial(s), new %d trial(s) per variant", n(bases), n(news))
}

// loadReports reads the reports path names: a report.json, a report
// folder, or a folder of report folders (the newest of each experiment).
// Anything else is a usage error naming the path.
func loadReports(path string) ([]*report.Report, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usageErr("%s: no such file or folder", path)
	}
	if !fi.IsDir() {
		r, err := readReportFile(path)
		if err != nil {
			return nil, usageErr("%s: %v", path, err)
		}
		return []*report.Report{r}, nil
	}
	one := filepath.Join(path, report.FileJSON)
	if _, err := os.Stat(one); err == nil {
		r, err := readReportFile(one)
		if err != nil {
			return nil, usageErr("%s: %v", one, err)
		}
		return []*report.Report{r}, nil
	}
	folders, _, err := report.Folders(path)
	if err != nil {
		return nil, usageErr("%s: %v", path, err)
	}
	var out []*report.Report
	seen := map[string]bool{}
	for _, f := range folders { // newest first
		r := f.Report()
		if !seen[r.Experiment] {
			seen[r.Experiment] = true
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, usageErr("%s: no report.json and no report folder in it (want a report.json, a report folder, or a folder of them such as reports/)", path)
	}
	return out, nil
}

func readReportFile(path string) (*report.Report, error) {
	b, err := faults.ReadRegularFile(path, maxReportBytes, "a report.json")
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("no such file")
		}
		return nil, err
	}
	r, err := report.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if r.Experiment == "" {
		return nil, fmt.Errorf("not a report.json of fallacies run (no experiment name)")
	}
	return r, nil
}
