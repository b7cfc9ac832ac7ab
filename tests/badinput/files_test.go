package badinput_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// fallaciesBinary builds cmd/fallacies once for the tests of this file.
func fallaciesBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fallacies-badinput-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "fallacies")
		out, err := exec.Command("go", "build", "-o", binary, "../../cmd/fallacies").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func size(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

const validHead = "name: x\nfallacy: latency-is-zero\ndescription: d\nload: { rate: 10/s, duration: 30s }\nvariants: { naive: {} }\n"

// TestHostileExperimentFiles runs `fallacies validate` (and `run`, which
// must refuse the same files before starting anything) on files of every
// hostile class: special files, files too large, bytes YAML refuses,
// values that would crash Toxiproxy, unbounded nesting, a flood of errors.
// Each exits 2 with one clear message at the right place, never hangs and
// never panics.
func TestHostileExperimentFiles(t *testing.T) {
	bin := fallaciesBinary(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.yaml")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	big := write("big.yaml", validHead+strings.Repeat("#"+strings.Repeat("x", 98)+"\n", (4<<20)/100))
	nonUTF8 := write("latin1.yaml", validHead+"faults:\n  - { at: 1s, target: us\xffer, kind: latency, latency: 10ms }\n")
	nul := write("nul.yaml", validHead+"faults:\n  - { at: 1s, target: user,\x00 kind: latency }\n")
	deep := write("deep.yaml", validHead+"hypotheses:\n  - { when: always, check: \""+strings.Repeat("(", 100)+"events.lost == 0"+strings.Repeat(")", 100)+"\" }\n")
	slicer := write("slicer.yaml", validHead+"faults:\n  - { at: 1s, target: user, kind: slicer, average_size: 16 }\n")
	bandwidth := write("bandwidth.yaml", validHead+"faults:\n  - { at: 1s, target: user, kind: bandwidth, rate: 92233720368547758 }\n")
	alias := write("alias.yaml", validHead+"faults:\n  - { at: 1s, target: *nowhere, kind: latency, latency: 10ms }\n")
	block := write("block.yaml", validHead+"hypotheses:\n  - when: before\n    check: |\n      events.lost == 0 and\n      order.bogus > 1\n")
	indent := write("indent.yaml", validHead+"faults:\n  - at: 1s\n    target: user\n   kind: latency\n")
	flood := write("flood.yaml", validHead+"faults: ["+strings.Repeat("1,", 199_999)+"1]\n")
	var many strings.Builder
	many.WriteString("name: x\nfallacy: latency-is-zero\ndescription: d\nload: { rate: 10/s, duration: 10m }\nvariants: { naive: {} }\nfaults:\n")
	for i := range 10_000 {
		fmt.Fprintf(&many, "  - { at: %dms, for: 50ms, target: user, kind: latency, latency: 10ms }\n", i*50)
	}
	manyFaults := write("many.yaml", many.String())

	tests := []struct {
		name string
		args []string
		code int
		want []string // each a line or part of a line of stderr (stdout when code is 0)
	}{
		{"fifo", []string{"validate", fifo}, 2, []string{fifo + ": is a named pipe (FIFO), not a regular file"}},
		{"fifo run", []string{"run", fifo}, 2, []string{fifo + ": is a named pipe (FIFO), not a regular file"}},
		{"dev zero", []string{"validate", "/dev/zero"}, 2, []string{"/dev/zero: is a character device, not a regular file"}},
		{"folder without experiments", []string{"validate", folder}, 2, []string{folder + ": no experiment files"}},
		{"too large", []string{"validate", big}, 2, []string{fmt.Sprintf("%s: %d bytes is more than the limit of 4194304 bytes (4 MiB)", big, size(t, big))}},
		{"not UTF-8", []string{"validate", nonUTF8}, 2, []string{nonUTF8 + ":7:25: byte 0xFF is not UTF-8"}},
		{"NUL", []string{"validate", nul}, 2, []string{nul + ":7:28: a NUL byte (0x00) is not allowed in YAML"}},
		{"deep parentheses", []string{"validate", deep}, 2, []string{deep + ":7:61: hypotheses[0].check: nested more than 32 deep"}},
		{"slicer that panics Toxiproxy", []string{"validate", slicer}, 2, []string{slicer + ":7:5: faults[0].size_variation: size_variation 32 is not less than average_size 16"}},
		{"slicer run", []string{"run", slicer}, 2, []string{slicer + ":7:5: faults[0].size_variation"}},
		{"bandwidth that overflows", []string{"validate", bandwidth}, 2, []string{bandwidth + ":7:52: faults[0].rate: 92233720368547758 KB/s is more than the limit of 10000000 KB/s"}},
		{"undefined alias", []string{"validate", alias}, 2, []string{alias + ":7:23: invalid YAML: unknown anchor 'nowhere' referenced"}},
		{"error in a block scalar", []string{"validate", block}, 2, []string{block + ":10:7: hypotheses[0].check: unknown metric order.bogus"}},
		{"key indented wrong", []string{"validate", indent}, 2, []string{indent + ":9:4: invalid YAML: did not find expected '-' indicator"}},
		{"200,000 errors", []string{"validate", flood}, 2, []string{flood + ":6:10: faults[0]: want a mapping", flood + ":6:110: 199950 more errors not shown (only the first 50 are)"}},
		{"10,000 faults", []string{"validate", manyFaults}, 0, []string{manyFaults + ": ok (x: 1 variants, 10000 faults, 0 hypotheses)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A generous deadline: it catches a hang (a FIFO read), not a
			// slow machine.
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("fallacies %s did not end in 60s", strings.Join(tt.args, " "))
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if tt.code == 0 {
				out = stdout.String()
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %.2000s", code, tt.code, stderr.String())
			}
			if strings.Contains(stderr.String(), "panic") || strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("a panic: %.2000s", stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%.2000s", w, out)
				}
			}
			if n := strings.Count(stderr.String(), "\n"); n > 53 {
				t.Errorf("%d lines on stderr, want at most 50 errors, a count and a summary", n)
			}
		})
	}
}
