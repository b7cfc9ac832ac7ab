package metrics

import (
	"github.com/fallacies/fallacies/experiments/check"
)

// faultsFamily: what each fault's injector counted while the fault was on,
// read generically from the `counters` map report.json keeps under every
// applied fault: a packet fault's packets, dropped, retransmits, …, a
// call-level fault's calls and faulted, a NATS message fault's messages
// and faulted, and whatever counter another injector records there. A hypothesis reads them to prove that the fault
// bit (fault.lossy.rto_timeouts > 0) before it judges what the fault did.
var faultsFamily = Family{
	Name: "fault counters",
	Metrics: []check.MetricInfo{
		{Name: "fault.<fault>.<counter>", WholeRun: true, Type: check.TypeCount, Doc: "what the injector of the named fault counted while it was on (report.json's counters of the fault): packet faults count packets, dropped, delayed, reordered, duplicated, corrupted, retransmits, rto_timeouts; call-level faults count calls, faulted; NATS message faults count messages, faulted (and overtaken for nats-reorder)"},
	},
	Compute: func(r *Run, out *Values) {
		// The injector counts by fault name: every application of a
		// fault (a step schedule's steps) carries the same figures.
		for _, f := range r.Faults {
			for name, n := range f.Counters {
				out.SetRun("fault."+f.Name+"."+name, check.NumberValue(float64(n)))
			}
		}
	},
}
