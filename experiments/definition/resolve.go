package definition

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fallacies/fallacies/internal/suggest"
)

// Catalogue is the folder of the experiment catalogue, relative to the
// repository root.
const Catalogue = "experiments"

// Resolve finds what a command-line argument names: a file or folder as
// given, else the experiment of that name in the catalogue folder
// ("latency" is experiments/latency.yaml). When it finds neither, the error
// names the argument and suggests the closest experiment file, in the
// argument's own folder when it names one, else in the catalogue.
func Resolve(arg, catalogue string) (string, error) {
	if _, err := os.Stat(arg); err == nil {
		return arg, nil
	}
	bare := !strings.ContainsAny(arg, `/\`) && filepath.Ext(arg) == ""
	if bare {
		p := filepath.Join(catalogue, arg+".yaml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir := catalogue
	if !bare {
		dir = filepath.Dir(arg)
	}
	what := "no such file or folder"
	if bare {
		what = fmt.Sprintf("no such file, folder or experiment in %s/", catalogue)
	}
	if near := nearestExperiment(arg, dir); near != "" {
		if !bare {
			near = filepath.Join(dir, near+".yaml")
		}
		return "", fmt.Errorf("%s: %s (did you mean %s? fallacies list shows the catalogue)", arg, what, near)
	}
	return "", fmt.Errorf("%s: %s (fallacies list shows the catalogue)", arg, what)
}

// nearestExperiment returns the name of the experiment file in dir whose
// name is closest in spelling to arg's, or "" when none is close.
func nearestExperiment(arg, dir string) string {
	files, err := LoadDir(dir)
	if err != nil {
		return ""
	}
	name := strings.TrimSuffix(filepath.Base(arg), filepath.Ext(arg))
	best, bestD := "", len(name)/2+1 // more edits than half the name is another word
	for _, f := range files {
		cand := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if d := suggest.Distance(strings.ToLower(name), cand); d < bestD {
			best, bestD = cand, d
		}
	}
	return best
}
