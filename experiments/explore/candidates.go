package explore

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
)

// Candidate is one fault the search may inject: a kind of the registry on
// one edge, with its attributes chosen from the baseline.
type Candidate struct {
	ID    string      `json:"id"` // edge/kind[/method]
	Edge  string      `json:"edge"`
	Kind  faults.Kind `json:"kind"`
	Attrs []Attr      `json:"attrs"` // as written in an experiment file, in the kind's order
	// Window is how long the fault stays on: the search's window, or
	// longer when a delay must outlast a deadline to act.
	Window time.Duration `json:"window_ns"`
	Why    string        `json:"why,omitempty"` // how the parameters were chosen
	// Settle is how long the run goes on after the window: the edge's
	// deadline (an ack wait, a publish timeout) and a margin, so that a redelivery or
	// a retry the fault causes lands inside the run; 0: the search's.
	Settle time.Duration `json:"settle_ns,omitempty"`
	// Targeted is set when the fault acts on one method or subject the
	// baseline saw in successful orders' lineage (a call- or
	// message-level kind): such faults are tried first on their edge.
	Targeted bool `json:"targeted,omitempty"`
}

// Attr is one attribute of a fault as an experiment file writes it.
type Attr struct {
	Name  string `json:"name"`
	Value string `json:"value"` // YAML text: 300ms, 0.5, "payment.v1.PaymentService/Charge"
	// Millis is the value of a duration attribute, which the shrinker
	// halves; 0 for the others.
	Millis int64 `json:"-"`
}

// deadlineKnobs names, per edge, the knob that bounds how long a caller
// waits for it: a delay just past it is the one that acts.
var deadlineKnobs = map[string]string{
	faults.ProxyUser:             "order.user.timeout",
	faults.ProxyUserHTTP:         "order.user.timeout",
	faults.ProxyPayment:          "order.payment.timeout",
	faults.ProxyPayment1:         "order.payment.timeout",
	faults.ProxyPayment2:         "order.payment.timeout",
	faults.ProxyNATSOrder:        "order.publish_timeout",
	faults.ProxyNATSLedger:       "ledger.ack_wait",
	faults.ProxyNATSNotification: "notification.ack_wait",
}

// settleMargin is how long a run goes on past an edge's deadline after
// the window: a redelivery or a retry comes at most the deadline after
// the window's end, and is applied within this margin.
const settleMargin = 250 * time.Millisecond

// minProbeDelay is the least delay a candidate injects where no deadline
// bounds the caller: what a person waiting for an order notices.
const minProbeDelay = 300 * time.Millisecond

// Deadline returns the deadline a caller of edge has under sys, and the
// knob that sets it; 0 when none is configured.
func Deadline(sys config.System, edge string) (time.Duration, string) {
	name, ok := deadlineKnobs[edge]
	if !ok {
		return 0, ""
	}
	k, ok := config.Lookup(name)
	if !ok {
		return 0, ""
	}
	d, err := time.ParseDuration(k.Value(sys))
	if err != nil { // off
		return 0, name
	}
	return d, name
}

// ProbeDelay is the delay a candidate injects on an edge: just past the
// caller's deadline (deadline + 20%, at least 50 ms more) when one is
// configured, else twice the edge's baseline p99 and at least
// minProbeDelay.
func ProbeDelay(sys config.System, e Edge) (time.Duration, string) {
	if d, knob := Deadline(sys, e.Name); d > 0 {
		return d + max(d/5, 50*time.Millisecond), fmt.Sprintf("just past %s=%s", knob, d)
	}
	return max(2*e.P99, minProbeDelay), fmt.Sprintf("2× the baseline p99 (%s), at least %s", e.P99.Round(time.Microsecond), minProbeDelay)
}

// Enumerate lists every candidate fault on the edges given: for each edge,
// every kind of the registry whose target names the edge and that the
// embedded topology can apply (faults.TargetKind.CheckTopology), so a kind
// added to the registry joins the search without a change here. Required
// durations are the edge's probe delay; a text attribute with a pattern
// (a gRPC method, a NATS subject) gets one candidate per method or
// subject the baseline saw on the edge that matches it; other required
// attributes take the kind's example, the rest their defaults.
func Enumerate(sys config.System, edges []Edge, window time.Duration) []Candidate {
	var out []Candidate
	for _, e := range edges {
		for _, spec := range faults.Specs() {
			if !slices.Contains(spec.Target.Names(), e.Name) {
				continue
			}
			if msg, _ := spec.Target.CheckTopology(spec.Kind, "embedded"); msg != "" {
				continue
			}
			out = append(out, candidatesOf(sys, spec, e, window)...)
		}
	}
	return out
}

// candidatesOf fills the attributes of one kind on one edge.
func candidatesOf(sys config.System, spec faults.Spec, e Edge, window time.Duration) []Candidate {
	base := Candidate{Edge: e.Name, Kind: spec.Kind, Window: window}
	if d, _ := Deadline(sys, e.Name); d > 0 {
		base.Settle = d + settleMargin
	}
	var why []string
	var methodAttr *faults.Attr
	for _, a := range spec.Attrs {
		switch {
		case a.Unit == faults.Text && a.Pattern != "" && len(a.Values) == 0:
			methodAttr = &a
		case a.Required && a.Unit == faults.Millis:
			d, reason := ProbeDelay(sys, e)
			ms := min(max(d.Milliseconds(), a.Min), a.Max)
			d = time.Duration(ms) * time.Millisecond
			base.Attrs = append(base.Attrs, Attr{Name: a.Name, Value: d.String(), Millis: ms})
			why = append(why, a.Name+" "+reason)
			// A delay acts only while it lasts: the window outlasts it.
			base.Window = max(base.Window, d+window/2)
		case a.Required:
			base.Attrs = append(base.Attrs, Attr{Name: a.Name, Value: a.Example})
			why = append(why, a.Name+" the kind's example")
		}
	}
	base.Why = strings.Join(why, "; ")
	base.ID = e.Name + "/" + string(spec.Kind)
	if methodAttr == nil {
		return []Candidate{base}
	}
	re, err := regexp.Compile(methodAttr.Pattern)
	if err != nil {
		return []Candidate{base}
	}
	var out []Candidate
	for _, c := range e.Calls {
		if c.InSuccess == 0 || !re.MatchString(c.Name) || slices.ContainsFunc(out, func(x Candidate) bool { return strings.HasSuffix(x.ID, "/"+c.Name) }) {
			continue
		}
		m := base
		m.Attrs = append(slices.Clone(base.Attrs), Attr{Name: methodAttr.Name, Value: quote(c.Name)})
		m.ID = base.ID + "/" + c.Name
		m.Targeted = true
		out = append(out, m)
	}
	if len(out) == 0 { // no method seen: every method
		return []Candidate{base}
	}
	return out
}
