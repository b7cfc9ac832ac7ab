package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Renderers maps an output format name, as given on the command line, to
// the function that writes a report in that format.
var Renderers = map[string]func(io.Writer, *Report) error{
	"text":  Text,
	"json":  JSON,
	"junit": JUnit,
	"html":  HTML,
}

// Files written by WriteDir.
const (
	FileJSON  = "report.json"
	FileJUnit = "junit.xml"
	FileHTML  = "report.html"
)

// WriteDir writes report.json, junit.xml and report.html into dir, creating
// dir when needed. Each file is written to a temporary name and renamed into
// place, so a reader never sees a half-written report. (The trace files are
// written by the runner.)
func WriteDir(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir %s: %w", dir, err)
	}
	for _, f := range []struct {
		name   string
		render func(io.Writer, *Report) error
	}{{FileJSON, JSON}, {FileJUnit, JUnit}, {FileHTML, HTML}} {
		if err := writeFile(filepath.Join(dir, f.name), func(w io.Writer) error { return f.render(w, r) }); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes path through render, atomically.
func writeFile(path string, render func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreNotExist(os.Remove(tmp.Name())))
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := render(bw); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
