package definition

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "experiments")
	if err := os.Mkdir(cat, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"latency.yaml", "partition.yaml", "bandwidth.yaml"} {
		if err := os.WriteFile(filepath.Join(cat, n), []byte("name: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		arg, want, err string
	}{
		{arg: "latency", want: filepath.Join(cat, "latency.yaml")},
		{arg: filepath.Join(cat, "partition.yaml"), want: filepath.Join(cat, "partition.yaml")},
		{arg: cat, want: cat},
		{arg: "latancy", err: "latancy: no such file, folder or experiment in " + cat + "/ (did you mean latency? fallacies list shows the catalogue)"},
		{arg: "Partiton", err: "did you mean partition?"},
		{arg: filepath.Join(cat, "latancy.yaml"), err: filepath.Join(cat, "latancy.yaml") + ": no such file or folder (did you mean " + filepath.Join(cat, "latency.yaml") + "?"},
		{arg: "zzzzzzzz", err: "zzzzzzzz: no such file, folder or experiment in " + cat + "/ (fallacies list shows the catalogue)"},
		{arg: "nope/x.yaml", err: "nope/x.yaml: no such file or folder (fallacies list"},
	} {
		got, err := Resolve(tt.arg, cat)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Resolve(%q) = %q, %v; want an error containing %q", tt.arg, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
		}
	}
}
