// Package explore searches for the faults the system does not tolerate,
// the way lineage-driven fault injection does: a fault-free baseline with
// full tracing shows what every successful order depends on (Graph: the
// gRPC methods and NATS subjects on each link), the fault registry gives
// the kinds that apply to each link (Candidates, parameters from the
// baseline), pruning keeps the faults that can change an outcome (single
// faults first, then pairs among links whose single faults were
// tolerated), each scenario runs on a fresh topology with short phases
// and default invariants, and every failing scenario is shrunk and
// written as an experiment file that `fallacies run` replays
// (docs/explore.md).
//
// The package does not start anything itself: it is given the function
// that runs one experiment (RunFunc; cmd/fallacies hands it the runner).
package explore
