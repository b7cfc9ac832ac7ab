package consumer

// clipToken shortens a page token for an error message, so that an
// oversized token is not echoed back whole.
func clipToken(t string) string {
	if len(t) > 32 {
		return t[:32] + "…"
	}
	return t
}
