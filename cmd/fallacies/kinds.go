package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fallacies/fallacies/faults"
)

// kindAttr is one attribute of a fault kind, as fallacies kinds --json
// prints it.
type kindAttr struct {
	Name     string `json:"name"`
	Unit     string `json:"unit"`
	Default  int64  `json:"default"`
	Min      int64  `json:"min"`
	Max      int64  `json:"max"`
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc,omitempty"`
}

// kindInfo is one fault kind, as fallacies kinds --json prints it.
type kindInfo struct {
	Kind        string     `json:"kind"`
	Target      string     `json:"target"`
	Directional bool       `json:"directional"`
	Attributes  []kindAttr `json:"attributes"`
	Doc         string     `json:"doc"`
}

func cmdKinds(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "kinds", "[--json]", "list the fault kinds experiment files can use, with their targets and attributes")
	asJSON := fs.Bool("json", false, `print [{"kind","target","directional","attributes":[{"name","unit","default","min","max"}],"doc"}] for tools`)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("kinds", pos); err != nil {
		return err
	}
	var ks []kindInfo
	for _, s := range faults.Specs() {
		k := kindInfo{Kind: string(s.Kind), Target: string(s.Target), Directional: s.Directional, Attributes: []kindAttr{}, Doc: s.Doc}
		for _, a := range s.Attrs {
			k.Attributes = append(k.Attributes, kindAttr{Name: a.Name, Unit: string(a.Unit), Default: a.Default, Min: a.Min, Max: a.Max, Required: a.Required, Doc: a.Doc})
		}
		ks = append(ks, k)
	}
	if *asJSON {
		return writeJSON(e.stdout, ks)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTARGET\tDIRECTION\tWHAT IT DOES (ATTRIBUTES BELOW)")
	for _, s := range faults.Specs() {
		dir := "-"
		if s.Directional {
			dir = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, s.Target, dir, s.Doc)
		for _, a := range s.Attrs {
			fmt.Fprintf(tw, "\t\t\t  %s\n", attrText(a))
		}
	}
	return tw.Flush()
}

// writeJSON prints v as indented JSON, for the --json of a listing.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// attrText describes an attribute in one phrase, in the unit files write
// it in: "latency: 0s to 10m0s, required (added delay)".
func attrText(a faults.Attr) string {
	show := func(v int64) string { return fmt.Sprint(v) }
	unit := " " + string(a.Unit)
	switch a.Unit {
	case faults.Millis:
		show = func(v int64) string { return (time.Duration(v) * time.Millisecond).String() }
		unit = ""
	case faults.Microseconds:
		show = func(v int64) string { return (time.Duration(v) * time.Microsecond).String() }
		unit = ""
	case faults.Fraction:
		show = func(v int64) string { return strconv.FormatFloat(float64(v)/faults.FractionOne, 'g', -1, 64) }
		unit = ""
	case faults.Count:
		unit = ""
	case faults.PerMillion, faults.Choice:
		show, unit = a.Written, ""
	}
	s := fmt.Sprintf("%s: %s to %s%s", a.Name, show(a.Min), show(a.Max), unit)
	if a.Unit == faults.Text {
		s = a.Name + ": text"
		if len(a.Values) > 0 {
			s = a.Name + ": one of " + strings.Join(a.Values, ", ")
		}
	}
	switch {
	case a.Unit == faults.Text && !a.Required:
		s += ", optional"
	case a.Required:
		s += ", required"
	default:
		s += ", default " + show(a.Default)
	}
	if a.Doc != "" {
		s += " (" + a.Doc + ")"
	}
	return s
}
