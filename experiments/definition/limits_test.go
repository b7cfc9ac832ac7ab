package definition

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFileRefusesWhatIsNotARegularFile: a folder, a named pipe with
// no writer, a character device and a socket are refused at once with
// the path and what it is, without reading from them; a file over the
// size limit is refused with its size and the limit, one at the limit is
// read.
func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.yaml")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	atLimit := filepath.Join(dir, "limit.yaml")
	if err := os.WriteFile(atLimit, []byte(head+strings.Repeat("#", MaxFileSize-len(head)-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string // "" for read
	}{
		{dir, dir + ": is a folder, not a regular file"},
		{fifo, fifo + ": is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "/dev/zero: is a character device, not a regular file"},
		{sock, sock + ": is a socket, not a regular file"},
		{big, fmt.Sprintf("%s: %d bytes is more than the limit of %d bytes (4 MiB)", big, MaxFileSize+1, MaxFileSize)},
		{filepath.Join(dir, "none.yaml"), filepath.Join(dir, "none.yaml") + ": no such file"},
		{atLimit, ""},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() {
			_, err := Load(tt.path)
			done <- err
		}()
		select {
		case err := <-done:
			if tt.want == "" {
				if err != nil {
					t.Errorf("Load(%s) = %v, want it read", tt.path, err)
				}
				continue
			}
			var errs Errors
			if err == nil || errors.As(err, &errs) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Load(%s) = %v, want %q", tt.path, err, tt.want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("Load(%s) still blocked after 30s", tt.path)
		}
	}
}

// TestErrorsAreCapped: a file with more errors than MaxErrors reports the
// first MaxErrors by position and one line more, at the first left out,
// with how many were.
func TestErrorsAreCapped(t *testing.T) {
	n := 10_000
	src := head + "faults: [" + strings.Repeat("1, ", n-1) + "1]\n"
	_, err := Parse("x.yaml", []byte(src))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	if len(errs) != MaxErrors+1 {
		t.Fatalf("%d errors reported, want %d", len(errs), MaxErrors+1)
	}
	for i, e := range errs[:MaxErrors] {
		if e.Line != 6 || e.Col != 10+3*i || !strings.HasPrefix(e.Msg, "want a mapping") {
			t.Fatalf("error %d = %v, want the item at 6:%d", i, e, 10+3*i)
		}
	}
	last := errs[MaxErrors]
	if want := fmt.Sprintf("x.yaml:6:%d: %d more errors not shown (only the first 50 are)", 10+3*MaxErrors, n-MaxErrors); last.Error() != want {
		t.Errorf("last line = %q, want %q", last.Error(), want)
	}
}

// TestLongValuesAreClipped: a message quoting a megabyte-long value
// quotes a bounded part of it.
func TestLongValuesAreClipped(t *testing.T) {
	src := head + "topology: " + strings.Repeat("é", 1<<20) + "\n"
	_, err := Parse("x.yaml", []byte(src))
	if err == nil || len(err.Error()) > 4*maxMessage || !strings.Contains(err.Error(), "…") || !strings.HasPrefix(err.Error(), "x.yaml:6:11: topology:") {
		t.Fatalf("err = %.400v (%d bytes)", err, len(err.Error()))
	}
}

// TestAliasesAreBounded: aliases of aliases that stand for more than
// MaxAliasNodes nodes, and an alias inside the node it names, are refused
// at the alias; aliases that stand for a few nodes are fine.
func TestAliasesAreBounded(t *testing.T) {
	laughs := "a0: &a0 [1,1,1,1,1,1,1,1,1,1]\n"
	for i := 1; i <= 7; i++ {
		laughs += fmt.Sprintf("a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	tests := []struct {
		name, src, want string
	}{
		{"laughs", laughs, "x.yaml:6:"},
		{"cycle", "name: &n [*n]\n", "x.yaml:1:11: aliases stand for more than"},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := Parse("x.yaml", []byte(tt.src))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), "aliases stand for more than") {
			t.Errorf("%s: err = %v, want %s…", tt.name, err, tt.want)
		}
		t.Logf("%s: %v", tt.name, time.Since(start))
	}
	ok := "load: &l { rate: 10/s, duration: 30s }\nname: x\nfallacy: latency-is-zero\ndescription: d\nvariants: { a: &k { order.user.retries: 1 }, b: *k }\n"
	if _, err := Parse("x.yaml", []byte(ok)); err != nil {
		t.Errorf("small aliases: %v", err)
	}
}

// manyFaults is a valid experiment of n unnamed faults of one kind on
// one target, one after the other.
func manyFaults(n int) []byte {
	var b strings.Builder
	b.WriteString("name: x\nfallacy: latency-is-zero\ndescription: d\nload: { rate: 10/s, duration: 10m }\nvariants: { naive: {} }\nfaults:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - { at: %dms, for: 50ms, target: user, kind: latency, latency: 10ms }\n", i*50)
	}
	return []byte(b.String())
}

// TestValidationIsLinear: loading a file of 3,000 faults takes about as
// long as loading a file of 300 faults ten times, not ten times as long
// (unnamed faults were named, and overlaps checked, pair by pair). The
// two are measured in turns, best of two, so that the load of the
// machine weighs on both alike: linear is 1, quadratic 10.
func TestValidationIsLinear(t *testing.T) {
	parse := func(data []byte, times int) time.Duration {
		start := time.Now()
		for range times {
			if _, err := Parse("x.yaml", data); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start)
	}
	small, large := manyFaults(300), manyFaults(3000)
	ts, tl := time.Duration(1<<62), time.Duration(1<<62)
	for range 2 {
		ts = min(ts, parse(small, 10))
		tl = min(tl, parse(large, 1))
	}
	t.Logf("300 faults ten times: %v; 3,000 faults once: %v (ratio %.1f)", ts, tl, float64(tl)/float64(ts))
	if tl > 5*ts {
		t.Errorf("3,000 faults took %v, %.1f times 300 faults ten times (%v): validation is not linear", tl, float64(tl)/float64(ts), ts)
	}
	e, err := Parse("x.yaml", manyFaults(3))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range e.Faults {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "latency-user latency-user-2 latency-user-3" {
		t.Errorf("names = %s", got)
	}
}
