package report

import (
	"flag"
	"os"
	"testing"
)

var sampleOut = flag.String("sample", "", "write the sample report's HTML to this path, to look at it")

// TestWriteSample writes the sample report.html when -sample is given.
func TestWriteSample(t *testing.T) {
	if *sampleOut == "" {
		t.Skip("no -sample path given")
	}
	f, err := os.Create(*sampleOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := HTML(f, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := Text(os.Stdout, sampleReport()); err != nil {
		t.Fatal(err)
	}
}
