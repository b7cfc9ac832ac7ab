package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// folderName is how the runner names a report folder:
// <experiment>-YYYYMMDD-HHMMSS, with -2, -3, … for runs started in the same
// second.
var folderName = regexp.MustCompile(`^[A-Za-z0-9_.-]+-\d{8}-\d{6}(-\d+)?$`)

// Folder is one report folder found by Folders.
type Folder struct {
	Path  string
	Name  string // the folder's base name
	Bytes int64  // total size of its files
	r     *Report
}

// StartedAt is when the run that wrote the folder started.
func (f Folder) StartedAt() string { return f.r.StartedAt.Format("2006-01-02 15:04:05") }

// Report is the report the folder holds, as read from its report.json.
func (f Folder) Report() *Report { return f.r }

// Folders lists the report folders directly inside parent, newest run
// first, and the entries of parent that are not report folders (left
// alone by Prune). A report folder is recognised by its name (as the runner
// makes it) and its report.json, which must parse as a report with an
// experiment name and a start time; a run still under way has no
// report.json yet and is never listed.
func Folders(parent string) (reports []Folder, others []string, err error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, nil, fmt.Errorf("read reports folder: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(parent, e.Name())
		f, ok := readFolder(path, e)
		if !ok {
			others = append(others, path)
			continue
		}
		reports = append(reports, f)
	}
	slices.SortFunc(reports, func(a, b Folder) int {
		if c := b.r.StartedAt.Compare(a.r.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	})
	return reports, others, nil
}

// readFolder recognises one report folder.
func readFolder(path string, e fs.DirEntry) (Folder, bool) {
	if !e.IsDir() || e.Type()&fs.ModeSymlink != 0 || !folderName.MatchString(e.Name()) {
		return Folder{}, false
	}
	b, err := os.ReadFile(filepath.Join(path, FileJSON))
	if err != nil {
		return Folder{}, false
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil || r.Experiment == "" || r.StartedAt.IsZero() {
		return Folder{}, false
	}
	f := Folder{Path: path, Name: e.Name(), r: &r}
	// Only plain files and no deeper folders: the runner writes nothing
	// else, and anything else is not ours to delete.
	entries, err := os.ReadDir(path)
	if err != nil {
		return Folder{}, false
	}
	for _, c := range entries {
		if !c.Type().IsRegular() {
			return Folder{}, false
		}
		info, err := c.Info()
		if err != nil {
			return Folder{}, false
		}
		f.Bytes += info.Size()
	}
	return f, true
}

// PruneResult is what Prune kept and removed.
type PruneResult struct {
	Kept, Removed []Folder
	Others        []string // entries of the parent that are not report folders, left alone
}

// Prune keeps the keep newest report folders in parent and deletes the
// other report folders (see Folders); with dryRun it deletes nothing and
// says what it would remove. Entries that are not report folders are left
// alone.
func Prune(parent string, keep int, dryRun bool) (PruneResult, error) {
	if keep < 0 {
		return PruneResult{}, fmt.Errorf("keep %d: want 0 or more", keep)
	}
	reports, others, err := Folders(parent)
	if err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{Others: others}
	res.Kept = reports[:min(keep, len(reports))]
	var errs []error
	for _, f := range reports[len(res.Kept):] {
		if !dryRun {
			if err := os.RemoveAll(f.Path); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", f.Path, err))
				continue
			}
		}
		res.Removed = append(res.Removed, f)
	}
	return res, errors.Join(errs...)
}
