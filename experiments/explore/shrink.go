package explore

import (
	"slices"
	"time"
)

// Shrink makes a failing scenario smaller while fails still holds of it:
// it drops faults, halves each fault's window (not below minWindow) and
// halves each duration attribute (not below 1 ms), until none of these
// steps keeps it failing. The result is minimal in that sense: removing
// any of its faults, or halving any of its windows, makes it pass (as
// far as fails, a run, is repeatable). It returns the runs it made.
func Shrink(sc Scenario, minWindow time.Duration, fails func(Scenario) bool) (Scenario, int) {
	runs := 0
	try := func(c Scenario) bool {
		runs++
		return fails(c)
	}
	for changed := true; changed; {
		changed = false
		// Fewer faults.
		for i := 0; len(sc.Faults) > 1 && i < len(sc.Faults); i++ {
			c := Scenario{Faults: slices.Delete(slices.Clone(sc.Faults), i, i+1)}
			if try(c) {
				sc, changed = c, true
				i--
			}
		}
		// Shorter windows.
		for i := range sc.Faults {
			for sc.Faults[i].Window/2 >= minWindow {
				c := sc.clone()
				c.Faults[i].Window /= 2
				if !try(c) {
					break
				}
				sc, changed = c, true
			}
		}
		// Smaller delays.
		for i := range sc.Faults {
			for j := range sc.Faults[i].Attrs {
				for sc.Faults[i].Attrs[j].Millis >= 2 {
					c := sc.clone()
					a := &c.Faults[i].Attrs[j]
					a.Millis /= 2
					a.Value = (time.Duration(a.Millis) * time.Millisecond).String()
					if !try(c) {
						break
					}
					sc, changed = c, true
				}
			}
		}
	}
	return sc, runs
}

// clone copies a scenario deeply enough to change a window or an
// attribute.
func (s Scenario) clone() Scenario {
	c := Scenario{Faults: slices.Clone(s.Faults)}
	for i := range c.Faults {
		c.Faults[i].Attrs = slices.Clone(c.Faults[i].Attrs)
	}
	return c
}
