//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// windowColumns asks the terminal f for its window size (TIOCGWINSZ); 0
// when f is no terminal.
func windowColumns(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
