package events

import (
	"crypto/tls"

	"github.com/nats-io/nats.go"
)

// TLSOptions returns the NATS client options that encrypt a connection
// with c (which carries the client certificate), or none when c is nil.
func TLSOptions(c *tls.Config) []nats.Option {
	if c == nil {
		return nil
	}
	return []nats.Option{nats.Secure(c.Clone())}
}
