// Package faults is the fault vocabulary shared by experiment files and
// injectors: the kinds of fault, the attributes each takes, the targets they
// apply to, and the Injector interface that puts a fault on the system and
// takes it off again.
//
// A fault is data. Injecting it is the job of an Injector: faults/toxiproxy
// for network faults through the Toxiproxy API, faults/process for process
// faults, faults/container for container faults. This package itself does no
// I/O but reading small input files safely (ReadRegularFile) and the fault
// journal file (ReadJournal), whose format every injector's journal shares.
package faults

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Kind names a fault.
type Kind string

// Network faults, applied on a Toxiproxy proxy.
const (
	Latency   Kind = "latency"    // delay each chunk by latency ± jitter
	Bandwidth Kind = "bandwidth"  // cap throughput at rate KB/s per connection
	SlowClose Kind = "slow_close" // delay the close of a connection
	Timeout   Kind = "timeout"    // stop all data, close after timeout (0: never)
	ResetPeer Kind = "reset_peer" // reset connections (RST) after timeout
	Slicer    Kind = "slicer"     // cut data into small chunks with delays between them
	LimitData Kind = "limit_data" // close the connection after bytes bytes
	Partition Kind = "partition"  // proxy disabled: refused and cut connections
	Blackhole Kind = "blackhole"  // accept, never answer (timeout toxic with timeout 0)
	Sniffer   Kind = "sniffer"    // record the bytes relayed, to show what a listener on the path reads
)

// Process faults, applied on a service of the processes topology.
const (
	Kill    Kind = "kill"    // SIGKILL; the process stays down until restart
	Pause   Kind = "pause"   // SIGSTOP, SIGCONT on removal
	Restart Kind = "restart" // SIGKILL then start again
)

// Container faults, applied on a container of the compose topology with
// the docker CLI (faults/container).
const (
	ContainerKill       Kind = "container-kill"       // docker kill; docker start on removal
	ContainerPause      Kind = "container-pause"      // docker pause; docker unpause on removal
	ContainerRestart    Kind = "container-restart"    // docker restart
	ContainerDisconnect Kind = "container-disconnect" // docker network disconnect; reconnect on removal
)

// TargetKind says what a fault kind applies to.
type TargetKind string

// Target kinds.
const (
	TargetProxy   TargetKind = "proxy"   // a Toxiproxy proxy by name
	TargetProcess TargetKind = "process" // a service process by name
	// TargetContainer is a container of the compose topology by compose
	// service name (see Containers).
	TargetContainer TargetKind = "container"
)

// Unit is how an attribute's value is written and stored.
type Unit string

// Attribute units. Durations are stored in milliseconds, the unit
// Toxiproxy's API takes.
const (
	Millis       Unit = "ms"    // written as a duration: 300ms, 1s
	Microseconds Unit = "us"    // written as a duration: 500us
	KBps         Unit = "KB/s"  // written as a number of kilobytes per second
	Bytes        Unit = "bytes" // written as a number of bytes
)

// Attr describes one attribute of a fault kind.
type Attr struct {
	Name    string // as in Toxiproxy's API and in experiment files
	Unit    Unit
	Default int64
	Doc     string
	// Min and Max bound the value, in Unit, inclusive: the range the
	// toxic's implementation survives (outside it Toxiproxy panics,
	// overflows or loops forever). Experiment files are checked against
	// them and the JSON Schema carries them.
	Min, Max int64
}

// Attribute bounds shared by several kinds.
const (
	// MaxAttrMillis is the longest duration attribute, in milliseconds:
	// ten minutes, the longest load an experiment may run.
	MaxAttrMillis = 10 * 60 * 1000
	// MaxResetPeerMillis is the longest reset_peer timeout: Toxiproxy's
	// reset_peer toxic sleeps without listening for its removal, so the
	// removal of the fault waits for the timeout to pass.
	MaxResetPeerMillis = 5 * 1000
	// MaxBandwidthKBps is the highest bandwidth rate, 10 GB/s: Toxiproxy
	// multiplies it by 100 and slices with the product.
	MaxBandwidthKBps = 10_000_000
	// MaxSliceBytes bounds slicer sizes; Toxiproxy reads at most 32 KiB
	// at a time, so a larger slice is no slice at all.
	MaxSliceBytes = 1 << 20
	// MaxLimitDataBytes bounds limit_data's bytes, 1 TiB.
	MaxLimitDataBytes = 1 << 40
)

// Spec describes one fault kind.
type Spec struct {
	Kind        Kind
	Target      TargetKind
	Directional bool   // takes direction and toxicity (Toxiproxy toxics)
	Toxic       string // Toxiproxy toxic type; "" when it is not a toxic
	Attrs       []Attr
	Doc         string
}

var specs = []Spec{
	{Kind: Latency, Target: TargetProxy, Directional: true, Toxic: "latency", Doc: "delay data by latency ± jitter",
		Attrs: []Attr{{Name: "latency", Unit: Millis, Doc: "added delay", Max: MaxAttrMillis}, {Name: "jitter", Unit: Millis, Doc: "± random spread", Max: MaxAttrMillis}}},
	{Kind: Bandwidth, Target: TargetProxy, Directional: true, Toxic: "bandwidth", Doc: "cap throughput per connection",
		Attrs: []Attr{{Name: "rate", Unit: KBps, Doc: "kilobytes per second", Min: 1, Max: MaxBandwidthKBps}}},
	{Kind: SlowClose, Target: TargetProxy, Directional: true, Toxic: "slow_close", Doc: "delay closing the connection",
		Attrs: []Attr{{Name: "delay", Unit: Millis, Min: 1, Max: MaxAttrMillis}}},
	{Kind: Timeout, Target: TargetProxy, Directional: true, Toxic: "timeout", Doc: "stop data, close the connection after timeout (0: never)",
		Attrs: []Attr{{Name: "timeout", Unit: Millis, Max: MaxAttrMillis}}},
	{Kind: ResetPeer, Target: TargetProxy, Directional: true, Toxic: "reset_peer", Doc: "reset the connection (TCP RST) after timeout",
		Attrs: []Attr{{Name: "timeout", Unit: Millis, Max: MaxResetPeerMillis}}},
	{Kind: Slicer, Target: TargetProxy, Directional: true, Toxic: "slicer", Doc: "slice data into small chunks with a delay between them",
		Attrs: []Attr{
			{Name: "average_size", Unit: Bytes, Default: 64, Min: 1, Max: MaxSliceBytes},
			{Name: "size_variation", Unit: Bytes, Default: 32, Max: MaxSliceBytes - 1, Doc: "less than average_size"},
			{Name: "delay", Unit: Microseconds, Default: 1000, Max: MaxAttrMillis * 1000}}},
	{Kind: LimitData, Target: TargetProxy, Directional: true, Toxic: "limit_data", Doc: "close the connection after bytes",
		Attrs: []Attr{{Name: "bytes", Unit: Bytes, Max: MaxLimitDataBytes}}},
	{Kind: Partition, Target: TargetProxy, Doc: "disable the proxy: new connections refused, open ones cut"},
	{Kind: Blackhole, Target: TargetProxy, Directional: true, Toxic: "timeout", Doc: "accept and never answer"},
	{Kind: Sniffer, Target: TargetProxy, Directional: true, Toxic: "sniffer", Doc: "record the bytes relayed (custom toxic of the embedded Toxiproxy)"},
	{Kind: Kill, Target: TargetProcess, Doc: "SIGKILL the service process; it stays down until the fault ends, then restarts"},
	{Kind: Pause, Target: TargetProcess, Doc: "SIGSTOP the service process; SIGCONT when the fault ends"},
	{Kind: Restart, Target: TargetProcess, Doc: "SIGKILL the service process and start it again at once"},
	{Kind: ContainerKill, Target: TargetContainer, Doc: "docker kill the container (compose); docker start when the fault ends"},
	{Kind: ContainerPause, Target: TargetContainer, Doc: "docker pause the container (compose; every process frozen); unpause when the fault ends"},
	{Kind: ContainerRestart, Target: TargetContainer, Doc: "docker restart the container (compose) at once"},
	{Kind: ContainerDisconnect, Target: TargetContainer, Doc: "disconnect the container from the compose network (its name stops resolving); reconnect when the fault ends"},
}

// Specs returns every fault kind.
func Specs() []Spec { return slices.Clone(specs) }

// Lookup returns the spec of a kind.
func Lookup(k Kind) (Spec, bool) {
	for _, s := range specs {
		if s.Kind == k {
			return s, true
		}
	}
	return Spec{}, false
}

// Attr returns the named attribute of the kind.
func (s Spec) Attr(name string) (Attr, bool) {
	for _, a := range s.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// Check reports a value outside the attribute's bounds.
func (a Attr) Check(v int64) error {
	if v < a.Min || v > a.Max {
		return fmt.Errorf("%s %d is out of range: %d to %d %s", a.Name, v, a.Min, a.Max, a.Unit)
	}
	return nil
}

// CheckAttrs checks attrs, a value for every attribute of the kind (the
// defaults filled in), against the bounds of each attribute and the rules
// between them: a slicer's size_variation must be less than its
// average_size, or Toxiproxy cuts slices of negative length and panics.
// The error names the attribute at fault.
func (s Spec) CheckAttrs(attrs map[string]int64) (attr string, err error) {
	for _, a := range s.Attrs {
		if v, ok := attrs[a.Name]; ok {
			if err := a.Check(v); err != nil {
				return a.Name, err
			}
		}
	}
	if s.Kind == Slicer && attrs["size_variation"] >= attrs["average_size"] {
		return "size_variation", fmt.Errorf("size_variation %d is not less than average_size %d", attrs["size_variation"], attrs["average_size"])
	}
	return "", nil
}

// Direction is the stream a toxic applies to, as Toxiproxy names them:
// upstream is client→server, downstream is server→client.
type Direction string

// Directions.
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
	Both       Direction = "both"
)

// Proxy names, stable and documented: experiment files target them.
const (
	ProxyUser             = "user"              // order → user (gRPC)
	ProxyUserHTTP         = "user-http"         // order → user (JSON over HTTP)
	ProxyPayment          = "payment"           // order → payment
	ProxyNATSOrder        = "nats-order"        // order → NATS
	ProxyNATSNotification = "nats-notification" // notification → NATS
	ProxyNATSLedger       = "nats-ledger"       // ledger → NATS
	// Proxies that exist only in some configurations.
	ProxyPayment1    = "payment-1"    // order → payment replica 1 (payment.replicas >= 2)
	ProxyPayment2    = "payment-2"    // order → payment replica 2 (payment.replicas >= 3)
	ProxyNATSPayment = "nats-payment" // payment replicas → NATS (payment.idempotency: shared)
)

// Proxies lists every documented proxy name.
func Proxies() []string {
	return []string{ProxyUser, ProxyUserHTTP, ProxyPayment, ProxyNATSOrder, ProxyNATSNotification, ProxyNATSLedger,
		ProxyPayment1, ProxyPayment2, ProxyNATSPayment}
}

// Services lists the services a process fault can target.
func Services() []string {
	return []string{"order", "user", "payment", "notification", "ledger"}
}

// Containers lists the compose services a container fault can target: the
// services and the infrastructure (toxiproxy, nats).
func Containers() []string {
	return append(Services(), "toxiproxy", "nats")
}

// Fault is one fault on the schedule.
type Fault struct {
	Name      string // unique in an experiment; shown in reports and the journal
	Kind      Kind
	Target    string
	Direction Direction // Both when unset
	Toxicity  float64   // 0 < t <= 1; 1 when unset
	Attrs     map[string]int64
	At        time.Duration // offset from the start of the run
	For       time.Duration // 0: until the end of the run
}

// String describes the fault in one line for progress output, e.g.
// "latency on user (downstream) latency=300ms".
func (f Fault) String() string {
	s := fmt.Sprintf("%s on %s", f.Kind, f.Target)
	if spec, ok := Lookup(f.Kind); ok {
		if spec.Directional && f.Direction != "" {
			s += " (" + string(f.Direction) + ")"
		}
		for _, a := range spec.Attrs {
			if v, ok := f.Attrs[a.Name]; ok {
				s += fmt.Sprintf(" %s=%d%s", a.Name, v, a.Unit)
			}
		}
	}
	return s
}

// Applied is a fault that is on the system: what it takes to remove it.
type Applied struct {
	Fault   Fault
	Handles []string  // injector-specific ids, e.g. toxic names
	Start   time.Time // when it took effect
}

// Injector puts faults on a system and takes them off. Implementations are
// safe for concurrent use; Apply and Remove block until the system has
// acknowledged the change or ctx ends. Remove of an Applied that is already
// gone succeeds.
type Injector interface {
	Apply(ctx context.Context, f Fault) (Applied, error)
	Remove(ctx context.Context, a Applied) error
}
