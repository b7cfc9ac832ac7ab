package order

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/fallacies/fallacies/internal/semconv"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
)

// This file is order's JSON-over-HTTP client of user, used when
// config.Order.UserTransport is http (the transport-cost experiment):
//
//	getUser ──▶ GET http://<user-http proxy>/users/{id}?view=full|basic
//	               HTTP/1.1, one request per pooled connection at a time
//	           ◀── 200 application/json (protojson, snake_case names)
//
// Of the user link's resilience policy only the per-attempt timeout
// applies here; retries, breaker and bulkhead wrap the gRPC client only.
// The cached-profile fallback works for both transports.

// maxProfileBody bounds the JSON body order reads from user.
const maxProfileBody = 64 << 20

// userHTTPSpan is the name of order's client span of the HTTP call.
const userHTTPSpan = "GET /users/{id}"

// Span attributes order puts on PlaceOrder's server span about the user
// call, so that traces carry the cost of each transport.
const (
	// AttrUserTransport is grpc or http.
	AttrUserTransport = attribute.Key("fallacies.user.transport")
	// AttrUserBytes is the size of user's answer as it crossed the wire:
	// the protobuf message with its 5-byte gRPC prefix, or the HTTP/1.1
	// status line, headers and JSON body.
	AttrUserBytes = attribute.Key(semconv.UserBytes)
	// AttrUserCallMicros is how long the call took as order saw it,
	// decoding included, in microseconds.
	AttrUserCallMicros = attribute.Key(semconv.UserCallMicros)
)

// userHTTP fetches profiles from user's JSON API.
type userHTTP struct {
	addr   string // host:port
	base   string // http://host:port
	client *http.Client
	prop   propagation.TextMapPropagator
}

func newUserHTTP(addr string, prop propagation.TextMapPropagator) *userHTTP {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// The body is measured as it crossed the wire: no transparent gzip.
		DisableCompression: true,
	}
	return &userHTTP{addr: addr, base: "http://" + addr, client: &http.Client{Transport: tr}, prop: prop}
}

func (u *userHTTP) close() { u.client.CloseIdleConnections() }

// getUser fetches one profile under a client span; the error is a gRPC
// status: UNAVAILABLE when user could not be reached or failed,
// DEADLINE_EXCEEDED or CANCELED from ctx, NOT_FOUND and INVALID_ARGUMENT
// from user's answer. n is the answer's size on the wire.
func (u *userHTTP) getUser(ctx context.Context, tracer trace.Tracer, userID string, view config.View, timeout time.Duration) (_ *userv1.User, n int, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	target := u.base + "/users/" + url.PathEscape(userID) + "?view=" + string(view)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", http.MethodGet),
		attribute.String("url.template", "/users/{id}"),
	}
	if host, port, err := net.SplitHostPort(u.addr); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	ctx, span := tracer.Start(ctx, userHTTPSpan, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer func() {
		span.SetAttributes(AttrUserBytes.Int(n))
		if err != nil {
			span.SetStatus(otelcodes.Error, status.Code(err).String())
		}
		span.End()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, status.Errorf(codes.Internal, "user http request %s: %v", target, err)
	}
	u.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, 0, httpError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProfileBody))
	if err != nil {
		return nil, 0, httpError(ctx, err)
	}
	n = headerBytes(resp) + len(body)
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, n, status.Errorf(codes.NotFound, "user http %s: %s", userID, body)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, n, status.Errorf(codes.InvalidArgument, "user http %s: %d %s", userID, resp.StatusCode, body)
	default:
		return nil, n, status.Errorf(codes.Unavailable, "user http %s: %d %s", userID, resp.StatusCode, body)
	}
	var usr userv1.User
	if err := protojson.Unmarshal(body, &usr); err != nil {
		return nil, n, status.Errorf(codes.Internal, "decode user %s from json: %v", userID, err)
	}
	return &usr, n, nil
}

// headerBytes is the size of the response's status line and headers as
// HTTP/1.1 writes them ("HTTP/1.1 200 OK\r\n", "Name: value\r\n" each,
// then "\r\n").
func headerBytes(resp *http.Response) int {
	n := len("HTTP/1.1 ") + len(strconv.Itoa(resp.StatusCode)) + 1 + len(http.StatusText(resp.StatusCode)) + 2
	for k, vs := range resp.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

// httpError turns a transport error into a gRPC status: the caller's own
// deadline or cancellation keeps its code, anything else means user or
// the path to it failed.
func httpError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return status.Errorf(codes.DeadlineExceeded, "user http: %v", err)
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("user http: %v", err))
}
