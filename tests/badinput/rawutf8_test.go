package badinput_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	orderv1 "github.com/fallacies/fallacies/services/api/order/v1"
)

// rawCodec sends pre-encoded bytes as they are: a client that does not
// check UTF-8, as the Go protobuf runtime does, can send anything.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// fields encodes string fields by number, UTF-8 or not.
func fields(kv ...any) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		b = protowire.AppendTag(b, protowire.Number(kv[i].(int)), protowire.BytesType)
		b = protowire.AppendString(b, kv[i+1].(string))
	}
	return b
}

// TestBadInputRawUTF8 sends requests whose strings are not UTF-8, as a
// client that does not check can: each service answers INVALID_ARGUMENT
// with the field, the byte's position and its hex value (gRPC alone says
// INTERNAL, naming neither), and still works afterwards.
func TestBadInputRawUTF8(t *testing.T) {
	s := start(t)
	tests := []struct {
		name, service, method string
		req                   []byte
		want                  string
	}{
		{"PlaceOrder order_id", "order", "/order.v1.OrderService/PlaceOrder", fields(1, "o-\xff1", 2, "u-0001"), "order_id: byte 2 is 0xff, not valid UTF-8"},
		{"PlaceOrder user_id", "order", "/order.v1.OrderService/PlaceOrder", fields(1, "o-1", 2, "u-00\xc301"), "user_id: byte 4 is 0xc3, not valid UTF-8"},
		{"PlaceOrder card_number", "order", "/order.v1.OrderService/PlaceOrder", fields(1, "o-1", 2, "u-0001", 4, "4111\xfe"), "card_number: byte 4 is 0xfe, not valid UTF-8"},
		{"GetOrder order_id", "order", "/order.v1.OrderService/GetOrder", fields(1, "\x80"), "order_id: byte 0 is 0x80, not valid UTF-8"},
		{"GetUser user_id", "user", "/user.v1.UserService/GetUser", fields(1, "u-0001\xed\xa0\x80"), "user_id: byte 6 is 0xed, not valid UTF-8"},
		{"Charge idempotency_key", "payment", "/payment.v1.PaymentService/Charge", fields(1, "o-1", 2, "u-0001", 4, "key-\xff"), "idempotency_key: byte 4 is 0xff, not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient("passthrough:///"+s.ep.Services[tt.service], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var out []byte
			err = conn.Invoke(ctx, tt.method, &tt.req, &out, grpc.ForceCodec(rawCodec{}))
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != tt.want {
				t.Errorf("%v, want INVALID_ARGUMENT %q", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.order.PlaceOrder(ctx, &orderv1.PlaceOrderRequest{OrderId: "after-raw", UserId: "u-0001", AmountCents: 100, CardNumber: card}); err != nil {
		t.Fatalf("a good order after the raw ones: %v", err)
	}
}
