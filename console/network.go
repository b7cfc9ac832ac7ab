package console

import (
	"maps"
	"slices"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/faults/packet"
	toxiproxy "github.com/fallacies/fallacies/faults/toxiproxy"
)

// Network returns the console's injector of faults on a live system's
// links, as the runner arms a run's: proxy faults and the call-level
// gRPC and NATS kinds through the Toxiproxy injector tp (it interposes a
// link's gRPC or NATS layer with its first such fault and takes it off
// with its last), packet kinds through a packet injector interposing
// each link's segment on the first packet fault there (which cuts that
// link's open connections once; the clients reconnect). Give packets to
// Options.Packets: Serve closes it once the console's faults are off, so
// no segment stays. Every interposition is journaled by tp.
//
// targets lists, per target kind, the links among proxies (the system's
// proxies by name, as Options.Proxies) a fault of the kind can target.
func Network(tp *toxiproxy.Injector, proxies map[string]string, seed int64) (router *faults.Router, targets map[faults.TargetKind][]string, packets *packet.Injector) {
	packets = packet.NewInjector(tp, seed)
	router = faults.NewRouter().Handle(faults.TargetProxy, tp).Handle(faults.TargetGRPC, tp).Handle(faults.TargetNATS, tp)
	router.HandleKinds(packet.Applies, packets)
	present := func(links []string) []string {
		var out []string
		for _, l := range links {
			if _, ok := proxies[l]; ok {
				out = append(out, l)
			}
		}
		return out
	}
	targets = map[faults.TargetKind][]string{faults.TargetProxy: slices.Sorted(maps.Keys(proxies))}
	if l := present(faults.GRPCLinks()); len(l) > 0 {
		targets[faults.TargetGRPC] = l
	}
	if l := present(faults.NATSLinks()); len(l) > 0 {
		targets[faults.TargetNATS] = l
	}
	return router, targets, packets
}
