package main

import (
	"io"
	"os"
	"strconv"
	"strings"
)

// terminalWidth returns the width in columns of the terminal w writes to:
// $COLUMNS when it is a positive number, else the window size the terminal
// reports, else 80.
func terminalWidth(w io.Writer) int {
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	if f, ok := w.(*os.File); ok {
		if n := windowColumns(f); n > 0 {
			return n
		}
	}
	return 80
}
