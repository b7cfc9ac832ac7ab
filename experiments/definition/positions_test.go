package definition

import (
	"errors"
	"testing"
)

// TestErrorPositions: every error points at the line and column of the
// problem, wherever it is: bytes YAML does not allow, syntax errors
// inside nested blocks (yaml.v3 itself names the line where the block
// starts), undefined aliases, and expressions in block scalars, folded
// and quoted scalars that span lines or hold escapes.
func TestErrorPositions(t *testing.T) {
	hyp := head + "hypotheses:\n"
	flt := head + "faults:\n"
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"not UTF-8", flt + "  - { at: 1s, target: us\xffer, kind: latency, latency: 10ms }\n", 7, 25, "byte 0xFF is not UTF-8"},
		{"NUL", flt + "  - { at: 1s, target: user,\x00 kind: latency, latency: 10ms }\n", 7, 28, "a NUL byte (0x00) is not allowed in YAML"},
		{"NUL on line 1", "name: x\x00\n", 1, 8, "a NUL byte (0x00) is not allowed in YAML"},
		{"control character after é", "name: é\x07\n", 1, 8, "the control character U+0007 is not allowed in YAML"},
		{"undefined alias", flt + "  - { at: 1s, target: *nowhere, kind: latency, latency: 10ms }\n", 7, 23, "invalid YAML: unknown anchor 'nowhere' referenced"},
		{"key indented too little", flt + "  - at: 1s\n    target: user\n   kind: latency\n    latency: 10ms\n", 9, 4, "invalid YAML: did not find expected '-' indicator"},
		{"key indented too much", hyp + "  - when: before\n    check: events.lost == 0\n      name: x\n", 9, 11, "invalid YAML: mapping values are not allowed in this context"},
		{"colon in a value", flt + "  - at: 1s: 2s\n", 7, 11, "invalid YAML: mapping values are not allowed in this context"},
		{"tab indentation", flt + "\t- { at: 1s, target: user, kind: latency, latency: 10ms }\n", 7, 1, "invalid YAML: found character that cannot start any token"},
		{"unclosed quote", hyp + "  - { when: before, check: \"events.lost == 0 }\n", 7, 28, "invalid YAML: found unexpected end of stream"},
		{"literal block", hyp + "  - when: before\n    check: |\n      events.lost == 0 and\n      order.bogus > 1\n", 10, 7, "unknown metric order.bogus"},
		{"folded block", hyp + "  - when: before\n    check: >-\n      events.lost == 0 and\n      order.bogus > 1\n", 10, 7, "unknown metric order.bogus"},
		{"double-quoted over two lines", hyp + "  - { when: before, check: \"events.lost == 0 and\n      order.bogus > 1\" }\n", 8, 7, "unknown metric order.bogus"},
		{"single-quoted over two lines", hyp + "  - { when: before, check: 'events.lost == 0 and\n      order.bogus > 1' }\n", 8, 7, "unknown metric order.bogus"},
		{"plain over two lines", hyp + "  - when: before\n    check: events.lost == 0 and\n      order.bogus > 1\n", 9, 7, "unknown metric order.bogus"},
		{"after an escape", hyp + "  - { when: before, check: \"events.lost == 0 \\x61nd order.bogus > 1\" }\n", 7, 53, "unknown metric order.bogus"},
		{"after a doubled quote", hyp + "  - { when: before, check: 'trace.error_origin != ''x'' and order.bogus > 1' }\n", 7, 61, "unknown metric order.bogus"},
		{"wide characters before", hyp + "  - { name: ééé, when: before, check: \"order.bogus > 1\" }\n", 7, 40, "unknown metric order.bogus"},
		{"block scalar value", flt + "  - at: 1s\n    target: user\n    kind: |\n      latency\n", 10, 7, `"latency\n" is not a fault kind`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.src))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("err = %v, want Errors", err)
			}
			e := errs[0]
			if e.Line != tt.line || e.Col != tt.col || len(e.Msg) < len(tt.msg) || e.Msg[:len(tt.msg)] != tt.msg {
				t.Errorf("first error = %v\nwant x.yaml:%d:%d: …%s", e, tt.line, tt.col, tt.msg)
			}
		})
	}
}
