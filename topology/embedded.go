package topology

import (
	"context"
	"errors"
)

// Embedded is the whole system in this process: nats-server and Toxiproxy
// as libraries, every service a goroutine.
type Embedded struct {
	*system
}

// StartEmbedded starts the embedded topology and returns when every service
// answers its health check. On error everything started so far is stopped.
func StartEmbedded(ctx context.Context, o Options) (*Embedded, error) {
	in := inProcess{o: o}
	s, err := startSystem(ctx, o, &in)
	if err != nil {
		return nil, err
	}
	// A service that stopped serving while the others started fails the start.
	for _, l := range in.started {
		if ferr := l.failed(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if err != nil {
		s.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Embedded{system: s}, nil
}

// inProcess places every service instance in a goroutine of this process.
type inProcess struct {
	o       Options
	started []*local
}

func (p *inProcess) start(ctx context.Context, in instance, c ServeConfig, id *Identity) (running, error) {
	// Replicas trace as the one service they are.
	l, err := runServer(ctx, c, id, p.o.serveOptions(in.spec.name))
	if err != nil {
		return nil, err
	}
	p.started = append(p.started, l)
	return l, nil
}
