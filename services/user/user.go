// Package user is the user service: it serves seeded user profiles over
// gRPC (userv1.UserService) and the same profiles as JSON over plain HTTP,
// so that the cost of two encodings can be compared on the same link.
//
// Profiles are generated deterministically from the configuration: profile
// i has id UserID(i), a name and a tier picked by index from fixed lists,
// the configured balance, and an order history whose encoded protobuf size
// approximates config.User.HistoryBytes. The same configuration always
// yields the same bytes.
//
//	client ──gRPC GetUser──▶ Server ◀──HTTP GET /users/{id}── client
//	                           │
//	                     profiles (generated lazily, cached)
package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/fallacies/fallacies/internal/httpguard"
	"github.com/fallacies/fallacies/internal/semconv"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/input"
	"github.com/fallacies/fallacies/services/serve"
)

// MaxHistoryBytes is the largest history size a profile may be configured with.
const MaxHistoryBytes = config.MaxHistoryBytes

// MaxIDLength is the longest user id GetUser looks up, in bytes; a longer
// one is INVALID_ARGUMENT (and is not echoed back).
const MaxIDLength = 256

// UserID returns the id of the i-th seeded profile: u-0000, u-0001, …
func UserID(i int) string { return semconv.UserID(i) }

// Server serves the seeded profiles over gRPC and HTTP. Its methods are
// safe for concurrent use.
type Server struct {
	userv1.UnimplementedUserServiceServer

	cfg  config.User
	log  *slog.Logger
	grpc *serve.Server
	http *http.Server
	// httpHosts are host names the JSON API answers to besides its
	// addresses (internal/httpguard).
	httpHosts []string

	slots []slot // one per profile, filled on first use

	shutdownOnce sync.Once
	shutdownErr  error
}

type slot struct {
	once sync.Once
	user *userv1.User
}

// New validates cfg and builds the server. It starts nothing.
func New(cfg config.User, o serve.Options) (*Server, error) {
	if cfg.Users < 1 {
		return nil, fmt.Errorf("user.users: %d, need at least 1", cfg.Users)
	}
	if cfg.HistoryBytes < 0 || cfg.HistoryBytes > MaxHistoryBytes {
		return nil, fmt.Errorf("user.history_bytes: %d, need 0 to %d", cfg.HistoryBytes, MaxHistoryBytes)
	}
	if cfg.BalanceCents < 0 {
		return nil, fmt.Errorf("user.balance_cents: %d is negative", cfg.BalanceCents)
	}
	s := &Server{
		cfg:   cfg,
		log:   o.Log().With("service", "user"),
		grpc:  serve.NewServer(o),
		slots: make([]slot, cfg.Users),
	}
	userv1.RegisterUserServiceServer(s.grpc.GRPC, s)
	s.grpc.Health.SetServingStatus(userv1.UserService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.grpc.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", s.handleUser)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Serve serves gRPC on lis until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("serving grpc", "addr", lis.Addr().String())
	if err := s.grpc.GRPC.Serve(lis); err != nil {
		return fmt.Errorf("serve user grpc on %s: %w", lis.Addr(), err)
	}
	return nil
}

// SetHTTPHosts names the host names, besides its addresses, by which
// clients reach the JSON API (in the compose topology: the toxiproxy
// container, whose user-http proxy order calls). Call it before ServeHTTP.
func (s *Server) SetHTTPHosts(names ...string) { s.httpHosts = names }

// ServeHTTP serves the JSON API on lis until Shutdown:
//
//	GET /users/{id}?view=basic|full   the profile as JSON (snake_case names)
//	GET /healthz                      200 while serving
//
// A request from a web page (an Origin other than the API's own) or by a
// host name other than a loopback one is refused with 403
// (internal/httpguard). It returns nil after Shutdown.
func (s *Server) ServeHTTP(lis net.Listener) error {
	s.log.Info("serving http", "addr", lis.Addr().String())
	// Only programs on this machine: no cross-site request, no DNS
	// rebinding (internal/httpguard).
	s.http.Handler = httpguard.Wrap(s.http.Handler, lis.Addr(), s.httpHosts...)
	if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve user http on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Shutdown stops the HTTP server, then the gRPC server, gracefully, or at
// once when ctx ends. Calls after the first return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
			s.shutdownErr = fmt.Errorf("shutdown user http: %w", err)
		}
		s.grpc.Shutdown(ctx)
	})
	return s.shutdownErr
}

// GetUser returns one profile; the BASIC view leaves the history out.
func (s *Server) GetUser(_ context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	u, err := s.lookup(req.GetUserId(), req.GetView())
	if err != nil {
		return nil, err
	}
	return &userv1.GetUserResponse{User: u}, nil
}

// Profile returns the full profile of id, or an error with a gRPC status.
// It is the in-process view of what GetUser serves.
func (s *Server) Profile(id string) (*userv1.User, error) {
	return s.lookup(id, userv1.View_VIEW_FULL)
}

func (s *Server) lookup(id string, view userv1.View) (*userv1.User, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, `user_id: "" is empty`)
	}
	if len(id) > MaxIDLength {
		return nil, status.Errorf(codes.InvalidArgument, "user_id: %d bytes, at most %d", len(id), MaxIDLength)
	}
	if err := input.UTF8(id); err != nil { // reachable over HTTP: gRPC refuses such a string itself
		return nil, status.Errorf(codes.InvalidArgument, "user_id: %v", err)
	}
	switch view {
	case userv1.View_VIEW_UNSPECIFIED, userv1.View_VIEW_FULL, userv1.View_VIEW_BASIC:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "view: %d is not VIEW_FULL or VIEW_BASIC", int32(view))
	}
	i, ok := s.index(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "user_id: %q not found", id)
	}
	full := s.profile(i)
	if view != userv1.View_VIEW_BASIC {
		return full, nil
	}
	return &userv1.User{Id: full.Id, Name: full.Name, Tier: full.Tier, BalanceCents: full.BalanceCents}, nil
}

// index parses a canonical id and checks it names a seeded profile.
func (s *Server) index(id string) (int, bool) {
	digits, ok := strings.CutPrefix(id, "u-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 || i >= len(s.slots) || UserID(i) != id {
		return 0, false
	}
	return i, true
}

// profile returns the cached full profile i, generating it on first use.
// The returned message is shared and must not be modified.
func (s *Server) profile(i int) *userv1.User {
	sl := &s.slots[i]
	sl.once.Do(func() { sl.user = generate(i, s.cfg) })
	return sl.user
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	view := userv1.View_VIEW_FULL
	switch v := r.URL.Query().Get("view"); v {
	case "", "full":
	case "basic":
		view = userv1.View_VIEW_BASIC
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("view: %q is not basic or full", v))
		return
	}
	u, err := s.lookup(r.PathValue("id"), view)
	if err != nil {
		code := http.StatusBadRequest
		if status.Code(err) == codes.NotFound {
			code = http.StatusNotFound
		}
		writeError(w, code, status.Convert(err).Message())
		return
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(u)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode profile: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg}) // a map of strings always encodes
	writeJSON(w, code, b)
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
