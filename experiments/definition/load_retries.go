package definition

import (
	"fmt"
	"time"
)

// maxLoadRetries bounds load.retries (load.MaxRetries; spec does not
// import the load generator).
const maxLoadRetries = 10

// defaultRetryBackoff is load.retry_backoff when it is left out.
const defaultRetryBackoff = 50 * time.Millisecond

// loadRetries reads load.retries and load.retry_backoff: the client team's
// own retry layer.
func (p *parser) loadRetries(f *fields, l *Workload) {
	l.RetryBackoff = defaultRetryBackoff
	if e, ok := f.get("retries"); ok {
		if i, ok := p.integer(e.val, "load.retries", 0); ok {
			if i > maxLoadRetries {
				p.add(e.val, "load.retries", fmt.Sprintf("%d is more than %d", i, maxLoadRetries), "a client retrying more often only multiplies the load")
			}
			l.Retries = int(min(i, maxLoadRetries))
		}
	}
	if e, ok := f.get("retry_backoff"); ok {
		if d, ok := p.duration(e.val, "load.retry_backoff", "ms"); ok {
			if d == 0 {
				p.add(e.val, "load.retry_backoff", "must be more than 0", "write e.g. 50ms")
			}
			l.RetryBackoff = d
		}
	}
}
