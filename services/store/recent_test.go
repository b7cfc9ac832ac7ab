package store

import (
	"slices"
	"testing"
)

// TestRecentKeepsTheNewest appends past the limit and checks what is held,
// what was forgotten (and reported to forget), and the totals.
func TestRecentKeepsTheNewest(t *testing.T) {
	r := NewRecent[int](100)
	var forgot []int
	for i := range 250 {
		r.Append(i, func(v int) { forgot = append(forgot, v) })
	}
	held := r.Held()
	if len(held) > 100 || held[len(held)-1] != 249 {
		t.Fatalf("held %d records ending %d, want at most 100 ending 249", len(held), held[len(held)-1])
	}
	if r.Total() != 250 || r.Forgotten()+len(held) != 250 {
		t.Errorf("total %d, forgotten %d, held %d; want 250 = forgotten + held", r.Total(), r.Forgotten(), len(held))
	}
	if !slices.Equal(forgot, seq(0, r.Forgotten())) || !slices.Equal(held, seq(r.Forgotten(), 250)) {
		t.Errorf("forgot %v, held %v; want 0… in order, then the rest", forgot, held)
	}
}

// TestRecentPages pages through a window while it slides: every record is
// returned once, a token into forgotten records resumes at the oldest held
// one, and a foreign token is refused.
func TestRecentPages(t *testing.T) {
	r := NewRecent[int](100)
	for i := range 100 {
		r.Append(i, nil)
	}
	page, next, ok := r.Page(30, "")
	if !ok || !slices.Equal(page, seq(0, 30)) || next != "30" {
		t.Fatalf("first page %v next %q ok %v", page, next, ok)
	}
	r.Append(100, nil) // forgets 0…9
	page, next, ok = r.Page(30, next)
	if !ok || !slices.Equal(page, seq(30, 60)) || next != "60" {
		t.Fatalf("second page after a slide: %v next %q ok %v; want 30…59 next 60", page, next, ok)
	}
	for range 50 {
		r.Append(0, nil)
	}
	page, _, ok = r.Page(5, "20") // 20 was forgotten
	if !ok || page[0] != r.Held()[0] {
		t.Errorf("a token into forgotten records: %v, want the oldest held %d first", page, r.Held()[0])
	}
	page, next, ok = r.Page(1000, "140")
	if !ok || len(page) != r.Total()-140 || next != "" {
		t.Errorf("last page: %d records next %q, want %d and no next", len(page), next, r.Total()-140)
	}
	for _, bad := range []string{"x", "-1", "007", "100000"} {
		if _, _, ok := r.Page(10, bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestRecentAt reads records by absolute position: a held one is found, a
// forgotten or future one is not.
func TestRecentAt(t *testing.T) {
	r := NewRecent[int](10)
	for i := range 25 {
		r.Append(i, nil)
	}
	if v, ok := r.At(24); !ok || v != 24 {
		t.Errorf("At(24) = %d, %v; want 24, true", v, ok)
	}
	if v, ok := r.At(r.Forgotten()); !ok || v != r.Forgotten() {
		t.Errorf("At(%d), the oldest held = %d, %v; want itself, true", r.Forgotten(), v, ok)
	}
	for _, pos := range []int{0, r.Forgotten() - 1, 25, -1} {
		if _, ok := r.At(pos); ok {
			t.Errorf("At(%d) found a record; want none (forgotten or never appended)", pos)
		}
	}
}
