package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// flagHeader is the first line of a flag in PrintDefaults: "  -name" and,
// for a flag that takes a value, one word naming the value.
var flagHeader = regexp.MustCompile(`^  -([a-z][a-z0-9-]*)(?: ([A-Za-z][A-Za-z0-9=_.|:-]*))?$`)

// TestHelpFlagNames checks, for every command, that each flag --help
// prints is shown under its own name followed by at most one word for its
// value. The flag package takes a back-quoted word of the usage text as the
// value's name, so "(see `fallacies up --endpoints-file`)" used to print
// "-target fallacies up --endpoints-file".
func TestHelpFlagNames(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, t.Context(), c.name, "--help")
			lines := strings.Split(r.stdout, "\n")
			for _, line := range lines {
				if !strings.HasPrefix(line, "  -") {
					continue
				}
				header, _, _ := strings.Cut(line, "\t") // one-letter flags keep their usage on the line
				header = strings.TrimRight(header, " ")
				m := flagHeader.FindStringSubmatch(header)
				if m == nil {
					t.Errorf("fallacies %s --help prints the flag as %q: want \"-name\" and at most one word for its value", c.name, header)
					continue
				}
				// The printed name is a flag the command accepts: --name=…
				// does not fail as an unknown flag.
				if out := cli(t, t.Context(), c.name, "--"+m[1]+"=bogus-value-for-test", "--help"); strings.Contains(out.stderr, "flag provided but not defined") {
					t.Errorf("fallacies %s --help prints -%s, which the command does not accept", c.name, m[1])
				}
			}
		})
	}
}

// TestReadmeListsEveryCommand checks that the commands table of README.md
// names every command of the binary, and nothing else.
func TestReadmeListsEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Commands\n")
	if !ok {
		t.Fatal("README.md has no \"## Commands\" section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `fallacies ([a-z-]+)")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		if !slices.Contains(documented, m[1]) {
			documented = append(documented, m[1])
		}
	}
	var binary []string
	for _, c := range commands {
		binary = append(binary, c.name)
		if !slices.Contains(documented, c.name) {
			t.Errorf("README.md's commands table does not list `fallacies %s` (%s)", c.name, c.summary)
		}
	}
	for _, d := range documented {
		if !slices.Contains(binary, d) {
			t.Errorf("README.md's commands table lists `fallacies %s`, which the binary does not have", d)
		}
	}
}

// TestRunFindsCatalogueNames checks that an experiment is found by its
// catalogue name, and that a misspelt name or file is exit 2 with the
// nearest name suggested.
func TestRunFindsCatalogueNames(t *testing.T) {
	t.Chdir("../..") // the repository root, where experiments/ is
	r := cli(t, t.Context(), "validate", "latency")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "experiments/latency.yaml: ok") {
		t.Errorf("validate latency: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, tt := range []struct{ arg, want string }{
		{"latancy", "fallacies run: latancy: no such file, folder or experiment in experiments/ (did you mean latency? fallacies list shows the catalogue)\n"},
		{"experiments/latancy.yaml", "fallacies run: experiments/latancy.yaml: no such file or folder (did you mean experiments/latency.yaml? fallacies list shows the catalogue)\n"},
	} {
		r := cli(t, t.Context(), "run", tt.arg)
		if r.code != exitUsage || r.stderr != tt.want {
			t.Errorf("run %s: exit %d, stderr %q; want exit 2, %q", tt.arg, r.code, r.stderr, tt.want)
		}
	}
}
