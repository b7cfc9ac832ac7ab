// Package input holds the checks of request fields that several services
// share: text that must be valid UTF-8, reported by byte position and hex
// value, and card numbers.
//
// The errors are plain; each service wraps them in its own status
// (gRPC INVALID_ARGUMENT, HTTP 400) with the field's name.
package input

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Byte describes the byte at s[i] for an error message: a printable ASCII
// character quoted ('*'), another ASCII byte in hex (0x0d), the start of
// a valid multi-byte character as that character and its code point
// ('é' U+00E9), and a byte that is not valid UTF-8 in hex with that said
// (0xff, not valid UTF-8) — never a character decoded from a lone byte.
func Byte(s string, i int) string {
	c := s[i]
	switch {
	case c >= 0x20 && c < 0x7f:
		return fmt.Sprintf("%q", rune(c))
	case c < utf8.RuneSelf:
		return fmt.Sprintf("0x%02x", c)
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("0x%02x, not valid UTF-8", c)
	}
	return fmt.Sprintf("%q %U", r, r)
}

// UTF8 reports the first byte of s that is not valid UTF-8, by position
// and hex value: "byte 3 is 0xff, not valid UTF-8".
func UTF8(s string) error {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("byte %d is %s", i, Byte(s, i))
		}
		i += size
	}
	return nil
}

// Card number bounds: 12 to 19 digits (ISO/IEC 7812), grouped or not.
const (
	MinCardDigits = 12
	MaxCardDigits = 19
)

// ErrCardChecksum is the error of a card number whose Luhn check digit is wrong.
var ErrCardChecksum = errors.New("the Luhn check digit is wrong (a typo?)")

// CardNumber checks a card number: MinCardDigits to MaxCardDigits digits,
// which may be grouped by single spaces or hyphens ("4111 1111 1111 1111"),
// whose last digit is the Luhn check digit. The error never repeats the
// number (it is a secret); it names the offending byte's position.
func CardNumber(s string) error {
	digits, sum := 0, 0
	var all []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			all = append(all, c-'0')
		case (c == ' ' || c == '-') && i > 0 && i < len(s)-1 && isDigit(s[i-1]) && isDigit(s[i+1]):
		default:
			if c == ' ' || c == '-' {
				return fmt.Errorf("byte %d is %s: digits may be grouped by single spaces or hyphens only", i, Byte(s, i))
			}
			return fmt.Errorf("byte %d is %s: a card number is digits", i, Byte(s, i))
		}
	}
	if digits < MinCardDigits || digits > MaxCardDigits {
		return fmt.Errorf("%d digits, need %d to %d", digits, MinCardDigits, MaxCardDigits)
	}
	for i := range all { // Luhn: double every second digit from the right
		d := int(all[len(all)-1-i])
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	if sum%10 != 0 {
		return ErrCardChecksum
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
