package topology

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/fallacies/fallacies/faults"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/ledger"
	"github.com/fallacies/fallacies/services/notification"
	"github.com/fallacies/fallacies/services/order"
	"github.com/fallacies/fallacies/services/payment"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/services/user"
)

// serviceSpec describes one service of the system under test: everything
// a topology needs to start it, in this process or in a child process.
// The table serviceSpecs is the one place that calls the services'
// constructors and says which links each service dials.
//
// Links are named after the proxy they go through (faults.Proxy…), and the
// name says what the proxy fronts: nats-… is nats-server, <instance>-http
// is the JSON-over-HTTP API of that instance, any other name the gRPC API
// of the instance of that name (user, payment, payment-1, …). A service
// dials only links, never another service directly.
type serviceSpec struct {
	name string
	// http: the service also serves JSON over HTTP (the link name+"-http").
	http bool
	// replicated: payment.replicas instances run (payment, payment-1, …).
	replicated bool
	// natsLink is the link to nats-server the service dials, if any
	// (`fallacies serve --nats-url` sets it).
	natsLink string
	// dials lists the links an instance dials in sys; nil means natsLink
	// alone (or nothing).
	dials func(sys config.System) []string
	// composePort is the container port of its gRPC API in
	// docker-compose.yml (the HTTP API's, if any, is composeHTTPPort).
	composePort, composeHTTPPort string
	// build constructs the server from the system configuration, the
	// instance's replica index and the addresses of its links (link name →
	// host:port; NATS links as nats:// URLs).
	build func(sys config.System, replica int, links map[string]string, so serve.Options) (service, error)
}

// service is what every service is: a gRPC server that shuts down.
type service interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// httpServer is a service that also serves JSON over HTTP (user).
type httpServer interface {
	ServeHTTP(net.Listener) error
	SetHTTPHosts(names ...string)
}

// readier is a service that is ready only once it is subscribed (a
// consumer: in core NATS mode an event published before that is lost).
type readier interface{ Ready() <-chan struct{} }

// serviceSpecs are the services in start order: a service starts after
// every service it dials.
var serviceSpecs = []serviceSpec{
	{
		name: "user", http: true,
		composePort: "7002", composeHTTPPort: "7080",
		build: func(sys config.System, _ int, _ map[string]string, so serve.Options) (service, error) {
			return user.New(sys.User, so)
		},
	},
	{
		name: "payment", replicated: true, natsLink: faults.ProxyNATSPayment,
		composePort: "7003",
		dials: func(sys config.System) []string {
			if sys.Payment.Idempotency == config.IdempotencyShared {
				return []string{faults.ProxyNATSPayment} // the shared key store
			}
			return nil
		},
		build: func(sys config.System, replica int, links map[string]string, so serve.Options) (service, error) {
			return payment.NewReplica(sys.Payment, payment.Replica{Index: replica, NATSURL: links[faults.ProxyNATSPayment]}, so)
		},
	},
	{
		name: "notification", natsLink: faults.ProxyNATSNotification,
		composePort: "7004",
		build: func(sys config.System, _ int, links map[string]string, so serve.Options) (service, error) {
			return notification.New(sys.Notification, links[faults.ProxyNATSNotification], sys.Order.PublishMode, so)
		},
	},
	{
		name: "ledger", natsLink: faults.ProxyNATSLedger,
		composePort: "7005",
		build: func(sys config.System, _ int, links map[string]string, so serve.Options) (service, error) {
			return ledger.New(sys.Ledger, links[faults.ProxyNATSLedger], sys.Order.PublishMode, so)
		},
	},
	{
		name: "order", natsLink: faults.ProxyNATSOrder,
		composePort: "7001",
		dials: func(sys config.System) []string {
			return append([]string{faults.ProxyUser, faults.ProxyUserHTTP, faults.ProxyPayment, faults.ProxyNATSOrder}, replicaNames(sys)...)
		},
		build: func(sys config.System, _ int, links map[string]string, so serve.Options) (service, error) {
			var replicas []string
			for _, name := range replicaNames(sys) {
				replicas = append(replicas, links[name])
			}
			return order.New(sys.Order, order.Deps{
				UserAddr:        links[faults.ProxyUser],
				UserHTTPAddr:    links[faults.ProxyUserHTTP],
				PaymentAddr:     links[faults.ProxyPayment],
				PaymentReplicas: replicas,
				NATSURL:         links[faults.ProxyNATSOrder],
			}, so)
		},
	},
}

// Services lists the service names in start order.
var Services = func() []string {
	var names []string
	for _, s := range serviceSpecs {
		names = append(names, s.name)
	}
	return names
}()

// specOf finds the description of a service by name.
func specOf(service string) (*serviceSpec, error) {
	for i := range serviceSpecs {
		if serviceSpecs[i].name == service {
			return &serviceSpecs[i], nil
		}
	}
	return nil, fmt.Errorf("unknown service %q (want one of %s)", service, strings.Join(Services, ", "))
}

// links lists the links an instance of s dials in sys.
func (s *serviceSpec) links(sys config.System) []string {
	if s.dials != nil {
		return s.dials(sys)
	}
	if s.natsLink != "" {
		return []string{s.natsLink}
	}
	return nil
}

// instance is one running copy of a service: the service itself, or one
// payment replica.
type instance struct {
	spec    *serviceSpec
	replica int
}

// name is the instance's name: its process, its key in
// Endpoints.Services and the link (proxy) in front of it.
func (in instance) name() string {
	if in.spec.replicated {
		return replicaName(in.replica)
	}
	return in.spec.name
}

// instances lists the instances a system runs, in start order.
func instances(sys config.System) []instance {
	var out []instance
	for i := range serviceSpecs {
		s := &serviceSpecs[i]
		n := 1
		if s.replicated {
			n = paymentReplicas(sys)
		}
		for r := range n {
			out = append(out, instance{spec: s, replica: r})
		}
	}
	return out
}

// linkTarget says what the proxy of a link fronts: nats-server, or the
// gRPC or HTTP listener of an instance.
func linkTarget(link string) (inst string, http, nats bool) {
	if strings.HasPrefix(link, "nats-") {
		return "", false, true
	}
	if name, ok := strings.CutSuffix(link, "-http"); ok {
		return name, true, false
	}
	return link, false, false
}

// dialedLinks lists every link some instance of sys dials: the proxies of
// the system.
func dialedLinks(sys config.System) []string {
	var out []string
	for _, in := range instances(sys) {
		for _, l := range in.spec.links(sys) {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// replicaName is the name of payment replica i: its proxy, its key in
// Endpoints.Services and, in the processes topology, its process. Replica 0
// keeps the plain name.
func replicaName(i int) string {
	if i == 0 {
		return "payment"
	}
	return "payment-" + strconv.Itoa(i)
}

// paymentReplicas is how many payment servers a system runs.
func paymentReplicas(sys config.System) int {
	return max(1, sys.Payment.Replicas)
}

// replicaNames are the names of the payment replicas after the first.
func replicaNames(sys config.System) []string {
	var out []string
	for i := 1; i < paymentReplicas(sys); i++ {
		out = append(out, replicaName(i))
	}
	return out
}

// DialedLinks lists the links (proxy names) an instance of service dials
// in sys; nil for an unknown service.
func DialedLinks(service string, sys config.System) []string {
	if s, err := specOf(service); err == nil {
		return s.links(sys)
	}
	return nil
}

// NATSLink names the link to NATS a service dials (what `fallacies serve
// --nats-url` sets); "" for a service that dials none or is unknown.
func NATSLink(service string) string {
	if s, err := specOf(service); err == nil {
		return s.natsLink
	}
	return ""
}
