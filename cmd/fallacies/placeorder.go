package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/status"

	"github.com/fallacies/fallacies/internal/semconv"
	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
	"github.com/fallacies/fallacies/services/config"
	"github.com/fallacies/fallacies/services/input"
	"github.com/fallacies/fallacies/services/serve"
	"github.com/fallacies/fallacies/topology"
)

func cmdPlaceOrder(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "place-order", "[flags]", "place orders through a running system and print what happened")
	addr := fs.String("order", "", "order service gRPC address (host:port)")
	target := fs.String("target", "", "the endpoints `FILE` written by fallacies up --endpoints-file (instead of --order)")
	n := fs.Int("n", 1, "how many orders to place, one after the other (at most 10000)")
	userID := fs.String("user", semconv.UserID(1), "user id (u-0000 … u-0099 by default)")
	amount := fs.Int64("amount", 1999, "amount in cents")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each order")
	allowRemote := fs.Bool("allow-remote", false, "allow an order address that is not loopback")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("place-order", pos); err != nil {
		return err
	}
	if *target != "" {
		ep, err := topology.LoadEndpoints(*target)
		if err != nil {
			return usageErr("--target: %v", err)
		}
		*addr = ep.Services["order"]
	}
	if *addr == "" {
		return usageErr("say where order listens: --order HOST:PORT or --target FILE (see `fallacies up`)")
	}
	if err := input.UTF8(*userID); err != nil {
		return usageErr("--user: %v", err)
	}
	if err := checkAddr("--order", *addr, false); err != nil {
		return err
	}
	if *n < 1 || *n > 10000 {
		return usageErr("-n %d: want 1 to 10000", *n)
	}
	if *amount <= 0 {
		return usageErr("--amount %d: want an amount in cents above 0", *amount)
	}
	if err := checkLoopback([]string{*addr}, *allowRemote); err != nil {
		return err
	}
	conn, err := serve.Dial(*addr, serve.Options{})
	if err != nil {
		return testbedErr(err)
	}
	defer conn.Close()
	client := orderv1.NewOrderServiceClient(conn)
	run := time.Now().UnixNano() % 1_000_000
	failed := 0
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		id := fmt.Sprintf("cli-%06d-%04d", run, i)
		cctx, cancel := context.WithTimeout(ctx, *timeout)
		start := time.Now()
		resp, err := client.PlaceOrder(cctx, &orderv1.PlaceOrderRequest{OrderId: id, UserId: *userID, AmountCents: *amount, CardNumber: "4111 1111 1111 1111"})
		took := time.Since(start)
		cancel()
		if err != nil {
			failed++
			st := status.Convert(err)
			fmt.Fprintf(e.stdout, "%s  %-9s %8.1fms  %s\n", id, st.Code(), ms(took), st.Message())
			continue
		}
		o := resp.GetOrder()
		note := ""
		if o.GetProfileFromFallback() {
			note = "  (balance checked against the cached profile)"
		}
		fmt.Fprintf(e.stdout, "%s  %-9s %8.1fms  charge %s%s\n", id, "PLACED", ms(took), o.GetChargeId(), note)
	}
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if failed > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d orders failed", failed, *n)}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cmdKnobs(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "knobs", "[--json]", "list the knobs experiment variants can set, with their defaults")
	asJSON := fs.Bool("json", false, `print [{"name","type","default","doc"}] (with "unit", "range" and "values" where they apply) for tools`)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("knobs", pos); err != nil {
		return err
	}
	type knob struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Default string   `json:"default"`
		Unit    string   `json:"unit,omitempty"`
		Range   string   `json:"range,omitempty"`
		Values  []string `json:"values,omitempty"`
		Doc     string   `json:"doc"`
	}
	var ks []knob
	for _, k := range config.Knobs() {
		ks = append(ks, knob{Name: k.Name, Type: string(k.Type), Default: k.Default(), Unit: k.Unit, Range: k.Bounds(), Values: k.Values, Doc: k.Doc})
	}
	if *asJSON {
		return writeJSON(e.stdout, ks)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KNOB\tTYPE\tDEFAULT\tRANGE\tWHAT IT DOES")
	for _, k := range ks {
		t := k.Type
		switch {
		case k.Type == string(config.Enum):
			t = strings.Join(k.Values, "|")
		case k.Type == string(config.Bool):
			t = "on|off"
		case k.Unit != "":
			t = "int (" + k.Unit + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Name, t, k.Default, k.Range, k.Doc)
	}
	return tw.Flush()
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func cmdVersion(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "", "print the version")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("version", pos); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "fallacies %s\n", version)
	return nil
}

// checkLoopback turns a refused address into a usage error (exit 2).
func checkLoopback(addrs []string, allowRemote bool) error {
	if err := topology.CheckLoopback(addrs, allowRemote); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}
