package serve

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/services/store"
)

// The page sizes of every List method.
const (
	DefaultPageSize = 1000  // a page_size of 0 means this
	MaxPageSize     = 10000 // larger page sizes are refused
)

// Page returns the records of w that a List request asks for with its
// page_size and page_token, and the token of the next page ("" after the
// last). A size outside 0 to MaxPageSize, or a token that no response
// gave, is INVALID_ARGUMENT naming the field.
func Page[T any](w *store.Recent[T], size int32, token string) (page []T, next string, err error) {
	switch {
	case size < 0 || size > MaxPageSize:
		return nil, "", status.Errorf(codes.InvalidArgument, "page_size: %d, need 0 to %d", size, MaxPageSize)
	case size == 0:
		size = DefaultPageSize
	}
	page, next, ok := w.Page(int(size), token)
	if !ok {
		return nil, "", status.Errorf(codes.InvalidArgument, "page_token: %q is not a token from next_page_token", clip(token))
	}
	return page, next, nil
}

// clip shortens a page token for an error message, so that an oversized
// token is not echoed back whole.
func clip(t string) string {
	if len(t) > 32 {
		return t[:32] + "…"
	}
	return t
}
