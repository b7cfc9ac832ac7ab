package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fallacies/fallacies/internal/testenv"
	userv1 "github.com/fallacies/fallacies/services/api/user/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// started is a user server serving gRPC and HTTP on loopback.
type started struct {
	srv      *Server
	client   userv1.UserServiceClient
	health   healthpb.HealthClient
	httpBase string
}

// start serves cfg on random loopback ports and shuts it down at cleanup.
func start(t *testing.T, cfg config.User) started {
	t.Helper()
	srv, err := New(cfg, serve.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	glis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(glis) }()
	go func() { errs <- srv.ServeHTTP(hlis) }()
	conn, err := serve.Dial(glis.Addr().String(), serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context5s()
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("serve returned %v after Shutdown, want nil", err)
			}
		}
	})
	return started{
		srv:      srv,
		client:   userv1.NewUserServiceClient(conn),
		health:   healthpb.NewHealthClient(conn),
		httpBase: "http://" + hlis.Addr().String(),
	}
}

func TestUserID(t *testing.T) {
	for i, want := range map[int]string{0: "u-0000", 7: "u-0007", 123: "u-0123", 9999: "u-9999", 12345: "u-12345"} {
		if got := UserID(i); got != want {
			t.Errorf("UserID(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.User
		want string
	}{
		{"no users", config.User{Users: 0}, "user.users: 0"},
		{"negative history", config.User{Users: 1, HistoryBytes: -1}, "user.history_bytes: -1"},
		{"huge history", config.User{Users: 1, HistoryBytes: MaxHistoryBytes + 1}, "user.history_bytes: 4194305"},
		{"negative balance", config.User{Users: 1, BalanceCents: -5}, "user.balance_cents: -5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, serve.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v, want error containing %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestSeedingIsDeterministicAndSized(t *testing.T) {
	for _, target := range []int{0, 100, 1024, 10_000, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			cfg := config.User{Users: 3, HistoryBytes: target, BalanceCents: 4200}
			a, err := New(cfg, serve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := New(cfg, serve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range cfg.Users {
				pa, pb := a.profile(i), b.profile(i)
				ba, err := proto.MarshalOptions{Deterministic: true}.Marshal(pa)
				if err != nil {
					t.Fatal(err)
				}
				bb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
				if string(ba) != string(bb) {
					t.Fatalf("profile %d differs between two servers with the same config", i)
				}
				size := proto.Size(&userv1.User{History: pa.History})
				if size > target {
					t.Errorf("profile %d history is %d bytes, more than the target %d", i, size, target)
				}
				// Within 5%, or within one minimal entry for tiny targets.
				if slack := max(target/20, 40); target-size > slack {
					t.Errorf("profile %d history is %d bytes, want within %d of %d", i, size, slack, target)
				}
				if pa.Id != UserID(i) || pa.BalanceCents != 4200 || pa.Name == "" || pa.Tier == "" {
					t.Errorf("profile %d = id %q name %q tier %q balance %d", i, pa.Id, pa.Name, pa.Tier, pa.BalanceCents)
				}
			}
			if target >= 1024 && proto.Equal(a.profile(0), a.profile(1)) {
				t.Error("profiles 0 and 1 are identical; want per-user histories")
			}
		})
	}
}

func TestGetUser(t *testing.T) {
	s := start(t, config.User{Users: 5, HistoryBytes: 2048, BalanceCents: 777})
	ctx := t.Context()

	hr, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: userv1.UserService_ServiceDesc.ServiceName})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", hr, err)
	}

	for _, tc := range []struct {
		name    string
		req     *userv1.GetUserRequest
		code    codes.Code
		msg     string
		history bool
	}{
		{"full", &userv1.GetUserRequest{UserId: "u-0003", View: userv1.View_VIEW_FULL}, codes.OK, "", true},
		{"unspecified is full", &userv1.GetUserRequest{UserId: "u-0000"}, codes.OK, "", true},
		{"basic", &userv1.GetUserRequest{UserId: "u-0004", View: userv1.View_VIEW_BASIC}, codes.OK, "", false},
		{"empty id", &userv1.GetUserRequest{}, codes.InvalidArgument, "user_id", false},
		{"bad view", &userv1.GetUserRequest{UserId: "u-0001", View: 9}, codes.InvalidArgument, "view: 9", false},
		{"unknown", &userv1.GetUserRequest{UserId: "u-0005"}, codes.NotFound, `"u-0005"`, false},
		{"not canonical", &userv1.GetUserRequest{UserId: "u-1"}, codes.NotFound, `"u-1"`, false},
		{"garbage", &userv1.GetUserRequest{UserId: "bob"}, codes.NotFound, `"bob"`, false},
		{"negative", &userv1.GetUserRequest{UserId: "u--001"}, codes.NotFound, `"u--001"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.client.GetUser(ctx, tc.req)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("GetUser(%v) code = %v (%v), want %v", tc.req, got, err, tc.code)
			}
			if err != nil {
				if !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Errorf("message %q does not name %q", status.Convert(err).Message(), tc.msg)
				}
				return
			}
			u := resp.User
			if u.Id != tc.req.UserId || u.BalanceCents != 777 || u.Name == "" || u.Tier == "" {
				t.Errorf("user = %v", u)
			}
			if got := len(u.History) > 0; got != tc.history {
				t.Errorf("history entries = %d, want history %v", len(u.History), tc.history)
			}
		})
	}
}

func TestHTTPServesTheSameProfile(t *testing.T) {
	s := start(t, config.User{Users: 3, HistoryBytes: 4096, BalanceCents: 1_000_000})
	ctx := t.Context()
	for _, tc := range []struct {
		query string
		view  userv1.View
	}{{"", userv1.View_VIEW_FULL}, {"?view=full", userv1.View_VIEW_FULL}, {"?view=basic", userv1.View_VIEW_BASIC}} {
		t.Run(tc.view.String()+tc.query, func(t *testing.T) {
			want, err := s.client.GetUser(ctx, &userv1.GetUserRequest{UserId: "u-0002", View: tc.view})
			if err != nil {
				t.Fatal(err)
			}
			code, body := get(t, s.httpBase+"/users/u-0002"+tc.query)
			if code != http.StatusOK {
				t.Fatalf("status %d, body %s", code, body)
			}
			if !strings.Contains(body, `"balance_cents"`) {
				t.Errorf("body has no snake_case balance_cents: %.200s", body)
			}
			var got userv1.User
			if err := protojson.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("decode %.200s: %v", body, err)
			}
			if !proto.Equal(&got, want.User) {
				t.Errorf("HTTP profile differs from gRPC profile:\nhttp %v\ngrpc %v", &got, want.User)
			}
		})
	}

	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/users/u-0009", http.StatusNotFound, "u-0009"},
		{"/users/u-0001?view=tiny", http.StatusBadRequest, "tiny"},
		{"/nowhere", http.StatusNotFound, "/nowhere"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := get(t, s.httpBase+tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d (body %s)", code, tc.code, body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("body %s is not a JSON error naming %q (%v)", body, tc.msg, err)
			}
		})
	}
	if code, body := get(t, s.httpBase+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
}

func TestShutdownIsIdempotentAndStopsBoth(t *testing.T) {
	srv, err := New(config.User{Users: 1}, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	glis, _ := net.Listen("tcp", "127.0.0.1:0")
	hlis, _ := net.Listen("tcp", "127.0.0.1:0")
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(glis) }()
	go func() { errs <- srv.ServeHTTP(hlis) }()
	url := "http://" + hlis.Addr().String() + "/healthz"
	testenv.EventuallyNil(t, 5*time.Second, "the HTTP API", func() error {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	ctx, cancel := context5s()
	defer cancel()
	for range 2 {
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Serve did not return after Shutdown")
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if _, err := http.Get(url); err == nil {
		t.Error("HTTP still answers after Shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	return resp.StatusCode, string(b)
}

func context5s() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
