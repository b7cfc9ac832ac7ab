package bench

import (
	"strings"
	"testing"
)

// TestHeapHolderOf checks that an allocation's stack is charged to the
// state that keeps it, the nearest frame to the leaf deciding.
func TestHeapHolderOf(t *testing.T) {
	const srv = "github.com/nats-io/nats-server/v2/server."
	tests := []struct {
		stack []string // leaf first
		want  string
	}{
		{[]string{srv + "(*stream).processJetStreamMsgWithBatch", srv + "(*stream).internalLoop"}, holdDedupe},
		{[]string{srv + "getMsgId", srv + "(*stream).processJetStreamMsgWithBatch"}, holdDedupe},
		{[]string{srv + "(*stream).storeMsgIdLocked", srv + "(*stream).processJetStreamMsgWithBatch"}, holdDedupe},
		{[]string{srv + "init.func10", "sync.(*Pool).Get", srv + "getMsgBlockBuf", srv + "(*msgBlock).writeMsgRecordLocked", srv + "(*stream).processJetStreamMsgWithBatch"}, holdBlocks},
		{[]string{"github.com/nats-io/nats-server/v2/server/stree.(*node10).grow", srv + "(*fileStore).storeRawMsg"}, holdSubjects},
		{[]string{"google.golang.org/protobuf/internal/impl.consumeStringValidateUTF8", "github.com/fallacies/fallacies/services/serve.utf8Codec.Unmarshal", "github.com/fallacies/fallacies/services/api/order/v1._OrderService_PlaceOrder_Handler"}, holdServices},
		{[]string{"github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"}, holdProxies},
		{[]string{"google.golang.org/grpc/internal/transport.newBufWriter"}, holdOther},
	}
	for _, tc := range tests {
		if got := heapHolderOf(tc.stack); got != tc.want {
			t.Errorf("heapHolderOf(%q) = %q, want %q", tc.stack, got, tc.want)
		}
	}
}

// TestHeapByHolder reads this process's own heap profile: a live buffer
// allocated here is charged to a holder and the note lists every holder.
func TestHeapByHolder(t *testing.T) {
	held, err := heapByHolder()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, v := range held {
		total += v
	}
	if total <= 0 {
		t.Fatalf("no bytes in use charged to any holder: %v", held)
	}
	note := heapGrowthNote(map[string]float64{holdDedupe: 1 << 20}, map[string]float64{holdDedupe: 3 << 20}, 1<<20, 10)
	for _, h := range heapHolderOrder {
		if !strings.Contains(note, h) {
			t.Errorf("the note leaves out %q:\n%s", h, note)
		}
	}
	if !strings.Contains(note, "| +2.0 | +2 |") {
		t.Errorf("2 MB grown over 1,048,576 orders should read +2.0 MB and +2 bytes per order:\n%s", note)
	}
}
