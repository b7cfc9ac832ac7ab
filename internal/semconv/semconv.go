// Package semconv holds the names that cross a package boundary, defined
// once (as OpenTelemetry's semantic conventions are): the trace attribute
// and span event names the services write and tracing, the metric
// families, the runner and the console read, and the ids of the seeded
// users that load generators send. A service imports only services/...
// and internal/..., and every other package may import internal/..., so
// both sides name the same constant here instead of copying a string.
package semconv

import "fmt"

// Trace attributes.
const (
	OrderID        = "fallacies.order_id"   // the order, on PlaceOrder's server span and on notification.wait
	Link           = "fallacies.link"       // the link a resilience policy guards: user, payment
	Attempt        = "fallacies.attempt"    // attempt number, 1 for the first
	Code           = "fallacies.code"       // gRPC code name of a failed attempt
	UserBytes      = "fallacies.user.bytes" // bytes of user's answer, on order's client span
	UserCallMicros = "fallacies.user.call_us"
)

// Span events a resilience policy records.
const (
	EventRetry            = "retry"
	EventBreakerRejected  = "breaker.rejected"
	EventBulkheadRejected = "bulkhead.rejected"
	EventFallback         = "fallback"
)

// UserID returns the id of the i-th seeded user profile: u-0000, u-0001, …
func UserID(i int) string { return fmt.Sprintf("u-%04d", i) }
