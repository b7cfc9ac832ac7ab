package metrics

import (
	"bytes"
	"strings"

	"github.com/fallacies/fallacies/experiments/check"
)

// securityFamily: what a listener on a link read (a sniffer fault) and
// what a client without a certificate could do (the rogue client).
var securityFamily = Family{
	Name: "security",
	Metrics: []check.MetricInfo{
		{Name: "sniffer.<proxy>.plaintext", WholeRun: true, Type: check.TypeBool, Doc: "the secret was seen in clear text on the proxy (needs a sniffer fault)"},
		{Name: "sniffer.<proxy>.bytes", WholeRun: true, Type: check.TypeCount, Doc: "bytes the sniffer on the proxy recorded"},
		{Name: "rogue.charge_succeeded", WholeRun: true, Type: check.TypeBool, Doc: "a charge from a client without a valid certificate succeeded"},
	},
	Compute: func(r *Run, out *Values) {
		for proxy, b := range r.Sniffed {
			plain := r.Secret != "" && (bytes.Contains(b, []byte(r.Secret)) || strings.Contains(string(b), strings.ReplaceAll(r.Secret, " ", "")))
			out.SetRun("sniffer."+proxy+".bytes", count(len(b)))
			out.SetRun("sniffer."+proxy+".plaintext", check.BoolValue(plain))
		}
		if r.Rogue != nil {
			out.SetRun("rogue.charge_succeeded", check.BoolValue(*r.Rogue))
		}
	},
}
