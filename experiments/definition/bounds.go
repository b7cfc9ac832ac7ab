package definition

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fallacies/fallacies/faults"
)

// Hard bounds on an experiment's load: a chaos tool's load loops stop by
// themselves, and an experiment file cannot turn the testbed into a load
// test of hours or a flood. There is no way to lift them from a file.
const (
	// MaxLoadRate is the highest arrival rate, in requests per second, of
	// load.rate and of every load.steps rate.
	MaxLoadRate = 20_000
	// MaxLoadDuration is the longest load.duration.
	MaxLoadDuration = 10 * time.Minute
	// MaxLoadTimeout is the longest client deadline, load.timeout.
	MaxLoadTimeout = time.Minute
	// MaxLoadDrain is the longest wait for the consumers after the load,
	// load.drain.
	MaxLoadDrain = 5 * time.Minute
)

// Bounds on the work of loading a file: whatever its content, loading
// takes time and memory proportional to at most MaxFileSize.
const (
	// MaxFileSize is the largest experiment file read, 4 MiB.
	MaxFileSize = 4 << 20
	// MaxErrors is how many errors a file reports at most; one more line
	// says how many were left out.
	MaxErrors = 50
)

// boundRate reports a rate above MaxLoadRate.
func (p *parser) boundRate(n *yaml.Node, path string, r float64) {
	if r > MaxLoadRate {
		p.add(n, path, fmt.Sprintf("%g/s is more than the limit of %d/s", r, MaxLoadRate),
			"the testbed measures faults, not capacity: lower the rate (the limit is fixed, for safety)")
	}
}

// boundDuration reports a duration above limit.
func (p *parser) boundDuration(n *yaml.Node, path string, d, limit time.Duration) {
	if d > limit {
		p.add(n, path, fmt.Sprintf("%v is longer than the limit of %v", d, limit),
			"shorten it (the limit is fixed, for safety: every load loop stops by itself)")
	}
}

// attrBound reports a fault attribute outside the bounds its toxic
// survives (faults.Attr.Min and Max), in the unit it is written in.
func (p *parser) attrBound(n *yaml.Node, path string, a faults.Attr, v int64) bool {
	if v >= a.Min && v <= a.Max {
		return true
	}
	show := func(v int64) string {
		switch a.Unit {
		case faults.Millis:
			return (time.Duration(v) * time.Millisecond).String()
		case faults.Microseconds:
			return (time.Duration(v) * time.Microsecond).String()
		case faults.PerMillion, faults.Choice:
			return a.Written(v)
		}
		return fmt.Sprintf("%d %s", v, a.Unit)
	}
	if v < a.Min {
		p.add(n, path, fmt.Sprintf("%s is less than the minimum of %s", show(v), show(a.Min)), "")
		return false
	}
	p.add(n, path, fmt.Sprintf("%s is more than the limit of %s", show(v), show(a.Max)),
		"the limit is what the fault's implementation survives; it is fixed")
	return false
}
