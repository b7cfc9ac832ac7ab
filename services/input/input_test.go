package input

import (
	"strings"
	"testing"
)

func TestByte(t *testing.T) {
	for _, tt := range []struct {
		s    string
		i    int
		want string
	}{
		{"a*b", 1, `'*'`},
		{"a\rb", 1, "0x0d"},
		{"a\x00", 1, "0x00"},
		{"caf\xc3\xa9", 3, `'é' U+00E9`},
		{"a\xffb", 1, "0xff, not valid UTF-8"},
		{"\xef\xbf", 0, "0xef, not valid UTF-8"}, // a truncated sequence
		{"\xc3\xa9", 1, "0xa9, not valid UTF-8"}, // a continuation byte alone
		{"\xef\xbf\xbd", 0, `'�' U+FFFD`},        // the replacement character itself is valid
	} {
		if got := Byte(tt.s, tt.i); got != tt.want {
			t.Errorf("Byte(%q, %d) = %s, want %s", tt.s, tt.i, got, tt.want)
		}
	}
}

func TestUTF8(t *testing.T) {
	if err := UTF8("order-é-1"); err != nil {
		t.Errorf("valid UTF-8: %v", err)
	}
	err := UTF8("ord\xfer")
	if err == nil || err.Error() != "byte 3 is 0xfe, not valid UTF-8" {
		t.Errorf("UTF8: %v", err)
	}
}

func TestCardNumber(t *testing.T) {
	good := []string{"4111 1111 1111 1111", "4111111111111111", "4111-1111-1111-1111", "5555555555554444", "378282246310005", "6011111111111117"}
	for _, c := range good {
		if err := CardNumber(c); err != nil {
			t.Errorf("CardNumber(%q): %v", c, err)
		}
	}
	bad := []struct{ card, want string }{
		{"", "0 digits, need 12 to 19"},
		{"abcd efgh ijkl mnop", "byte 0 is 'a': a card number is digits"},
		{"4111 1111 1111 111x", "byte 18 is 'x': a card number is digits"},
		{"4111  1111 1111 1111", "byte 4 is ' ': digits may be grouped"},
		{" 4111111111111111", "byte 0 is ' ': digits may be grouped"},
		{"4111111111111111-", "byte 16 is '-': digits may be grouped"},
		{"4111\xff1111", "byte 4 is 0xff, not valid UTF-8: a card number is digits"},
		{"4111 1111 1111 1112", "Luhn"},
		{"41111111111", "11 digits, need 12 to 19"},
		{strings.Repeat("4", 20), "20 digits, need 12 to 19"},
		{"٤١١١١١١١١١١١١١١١", "byte 0 is '٤' U+0664"}, // Arabic-Indic digits are not digits here
	}
	for _, tt := range bad {
		err := CardNumber(tt.card)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CardNumber(%q): %v, want an error containing %q", tt.card, err, tt.want)
		}
		if err != nil && len(tt.card) > 4 && strings.Contains(err.Error(), tt.card) {
			t.Errorf("CardNumber(%q): the error repeats the number: %v", tt.card, err)
		}
	}
}
