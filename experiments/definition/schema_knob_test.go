package definition

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fallacies/fallacies/services/config"
)

// TestRangePattern checks the string form of every Int knob's range in the
// schema against every number from 0 to past the top of the range.
func TestRangePattern(t *testing.T) {
	ranges := []config.Range{{Min: 0, Max: 9}, {Min: 1, Max: 1}, {Min: 0, Max: 100}, {Min: 1, Max: 3}, {Min: 0, Max: 16 << 20}}
	for _, k := range config.Knobs() {
		if k.Type == config.Int {
			ranges = append(ranges, k.Range)
		}
	}
	for _, r := range ranges {
		pat := rangePattern(r.Min, r.Max)
		re := regexp.MustCompile(pat)
		for _, n := range rangeSamples(r.Min, r.Max) {
			want := n >= r.Min && n <= r.Max
			if got := re.MatchString(strconv.FormatInt(n, 10)); got != want {
				t.Fatalf("%s matches %d: %v, want %v (range %d to %d)", pat, n, got, want, r.Min, r.Max)
			}
		}
		for _, edge := range []int64{r.Min, r.Max, r.Max + 1} {
			want := edge <= r.Max
			if got := re.MatchString(strconv.FormatInt(edge, 10)); got != want {
				t.Errorf("%s matches %d: %v, want %v", pat, edge, got, want)
			}
		}
		for _, bad := range []string{"", "-1", "01", "1.5", "9223372036854775807", "99999999999999999999"} {
			if re.MatchString(bad) {
				t.Errorf("%s matches %q", pat, bad)
			}
		}
	}
}

// rangeSamples gives the numbers a range's pattern is checked against:
// every number up to 2 000 and within 2 000 of either edge, every power of
// ten and its neighbours, and an even sample of about 20 000 numbers from 0
// to ten times the top, so the check stays fast under -race for large ranges.
func rangeSamples(lo, hi int64) []int64 {
	top := hi*10 + 10
	var ns []int64
	add := func(from, to int64) {
		for n := max(0, from); n <= min(to, top); n++ {
			ns = append(ns, n)
		}
	}
	add(0, 2_000)
	add(lo-2_000, lo+2_000)
	add(hi-2_000, hi+2_000)
	for p := int64(1); p <= top; p *= 10 {
		add(p-1, p+1)
	}
	step := max(1, top/20_000)
	for n := int64(0); n <= top; n += step {
		ns = append(ns, n)
	}
	return ns
}

// TestSchemaKnobRanges checks that the schema and the loader agree on
// every Int knob at its edges and one step beyond them, as a number and
// as a quoted string.
func TestSchemaKnobRanges(t *testing.T) {
	sch := compileSchema(t)
	for _, k := range config.Knobs() {
		if k.Type != config.Int {
			continue
		}
		for _, n := range []int64{k.Min - 1, k.Min, k.Max, k.Max + 1, 9223372036854775807} {
			want := n >= k.Min && n <= k.Max
			for _, form := range []string{strconv.FormatInt(n, 10), `"` + strconv.FormatInt(n, 10) + `"`} {
				src := strings.Replace(head, "naive: {}", "naive: { "+k.Name+": "+form+" }", 1)
				_, err := Parse("k.yaml", []byte(src))
				if got := err == nil; got != want {
					t.Errorf("loader: %s: %s accepted %v, want %v (%v)", k.Name, form, got, want, err)
				}
				err = sch.Validate(yamlInstance(t, src))
				if got := err == nil; got != want {
					t.Errorf("schema: %s: %s accepted %v, want %v (%v)", k.Name, form, got, want, err)
				}
			}
		}
	}
}
