//go:build !unix

package main

import "os"

// windowColumns is 0 where the window size cannot be asked: the width is
// $COLUMNS or 80.
func windowColumns(*os.File) int { return 0 }
