package store

import "strconv"

// RetainRecords is how many of its most recent records a service keeps in
// memory (charges, applications, ledger entries, orders): over ten times
// what the largest run of the catalogue places (1,500 orders), and small
// enough that a system at saturation fills its windows within seconds and
// then stops growing them (the five windows of an embedded topology hold
// about 18 MB at 20,000 records, with their id strings; at 100,000 they
// grew the heap through every round of a 30-second saturation bench,
// issue 17). A run that places more is not misjudged: the
// runner reports the records it forgot as a testbed failure. A service
// reads it when it is built; it is a variable only so that a test can
// build services with a small window.
var RetainRecords = 20_000

// Recent is the window of a service's most recent records: at most limit
// of them, the oldest forgotten first. A record's position is absolute (the
// n-th record ever appended is at n-1), so page tokens stay valid while the
// window slides. The zero value is not usable; Recent is not safe for
// concurrent use (the service's lock guards it).
type Recent[T any] struct {
	limit     int
	forgotten int // records dropped so far: the position of items[0]
	items     []T
}

// NewRecent returns an empty window of at most limit records (at least 10).
func NewRecent[T any](limit int) *Recent[T] {
	return &Recent[T]{limit: max(limit, 10)}
}

// Append adds v. A full window first forgets its oldest tenth, calling
// forget (when not nil) with each record dropped, so that the caller can
// drop what it indexed by them; appends stay O(1) amortised.
func (r *Recent[T]) Append(v T, forget func(T)) {
	if len(r.items) >= r.limit {
		n := r.limit / 10
		if forget != nil {
			for _, old := range r.items[:n] {
				forget(old)
			}
		}
		kept := copy(r.items, r.items[n:])
		clear(r.items[kept:]) // release the dropped records
		r.items = r.items[:kept]
		r.forgotten += n
	}
	r.items = append(r.items, v)
}

// Held returns the records in the window, oldest first. The slice is the
// window's own: read it under the lock that guards r, do not keep it.
func (r *Recent[T]) Held() []T { return r.items }

// Total returns how many records were ever appended.
func (r *Recent[T]) Total() int { return r.forgotten + len(r.items) }

// Forgotten returns how many records the window has dropped.
func (r *Recent[T]) Forgotten() int { return r.forgotten }

// At returns the record at absolute position pos (as Total counted it
// before the record was appended), and false when pos was forgotten or not
// appended yet.
func (r *Recent[T]) At(pos int) (v T, ok bool) {
	i := pos - r.forgotten
	if i < 0 || i >= len(r.items) {
		return v, false
	}
	return r.items[i], true
}

// Page returns up to size records from the position token names (the
// oldest held record for "" or for a position already forgotten) and the
// token of the next page ("" after the last record). ok is false when
// token is not a position this window handed out.
func (r *Recent[T]) Page(size int, token string) (page []T, next string, ok bool) {
	start := r.forgotten
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > r.Total() || strconv.Itoa(n) != token {
			return nil, "", false
		}
		start = max(n, r.forgotten)
	}
	from := start - r.forgotten
	to := min(from+size, len(r.items))
	if to < len(r.items) {
		next = strconv.Itoa(r.forgotten + to)
	}
	return r.items[from:to], next, true
}
