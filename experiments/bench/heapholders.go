package bench

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// Holders of the live heap that section 4b charges the growth between two
// rounds to. Each is state kept per order placed, or a cache, with its
// bound in the name.
const (
	holdDedupe   = "JetStream dedupe map (one Nats-Msg-Id per event, kept for the stream's 2-minute window)"
	holdBlocks   = "JetStream message-block caches (8 MB blocks of ORDERS, 4 MB of the bucket, each kept 10 s after its last use)"
	holdSubjects = "JetStream subject index (one subject per notifications-bucket key, kept for the bucket's 2-minute TTL)"
	holdServices = "the services' windows (store.Recent, 20,000 records each) and what their records hold"
	holdProxies  = "proxies' buffers (Toxiproxy)"
	holdOther    = "everything else (NATS and gRPC connections, runtime)"
	natsServer   = "github.com/nats-io/nats-server/v2/server."
)

// heapHolderOrder is the order the breakdown lists holders in.
var heapHolderOrder = []string{holdDedupe, holdBlocks, holdSubjects, holdServices, holdProxies, holdOther}

// heapHolderOf returns the holder an allocation's stack (leaf first) is
// charged to. The dedupe map's entries are allocated in three places of
// nats-server: the entry itself (built by processJetStreamMsgWithBatch,
// which retains nothing else), its id string (getMsgId) and the map and
// list that index it (storeMsgIdLocked).
func heapHolderOf(funcs []string) string {
	if len(funcs) > 0 && funcs[0] == natsServer+"(*stream).processJetStreamMsgWithBatch" {
		return holdDedupe
	}
	for _, f := range funcs {
		switch {
		case strings.HasPrefix(f, natsServer+"(*stream).storeMsgId"), f == natsServer+"getMsgId":
			return holdDedupe
		case f == natsServer+"getMsgBlockBuf":
			return holdBlocks
		case strings.HasPrefix(f, "github.com/nats-io/nats-server/v2/server/stree."):
			return holdSubjects
		case strings.HasPrefix(f, componentsPrefix+"services/"):
			return holdServices
		case strings.HasPrefix(f, "github.com/Shopify/toxiproxy/"):
			return holdProxies
		}
	}
	return holdOther
}

// heapByHolder reads this process's heap profile (as of the last
// collection) and returns the bytes in use by each holder.
func heapByHolder() (map[string]float64, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("read heap profile: %w", err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		return nil, fmt.Errorf("read heap profile: %w", err)
	}
	return heapHolders(prof)
}

// heapHolders charges the in-use bytes of a heap profile to holders.
func heapHolders(prof *profile.Profile) (map[string]float64, error) {
	byHolder, _, err := chargeByStack(prof, "inuse_space", heapHolderOf)
	if err != nil {
		return nil, fmt.Errorf("read heap profile: %w", err)
	}
	return byHolder, nil
}

// heapGrowthNote says what the heap grew by from round 2 to the last
// round, holder by holder, in MB and in bytes per order placed between
// the two, from the heap profiles taken after each round's collection.
func heapGrowthNote(round2, last map[string]float64, orders int64, rounds int) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Where the heap grew from round 2 to round %d (%d orders), by holder, from the heap profile after each round's collection (sampled, so the total differs a little from the table's):\n\n", rounds, orders)
	fmt.Fprintf(&w, "| holder | round 2 MB | round %d MB | grown MB | grown bytes per order |\n|---|---|---|---|---|\n", rounds)
	for _, h := range heapHolderOrder {
		grown := last[h] - round2[h]
		perOrder := 0.0
		if orders > 0 {
			perOrder = grown / float64(orders)
		}
		fmt.Fprintf(&w, "| %s | %.1f | %.1f | %+.1f | %+.0f |\n", h, round2[h]/(1<<20), last[h]/(1<<20), grown/(1<<20), perOrder)
	}
	return strings.TrimSuffix(w.String(), "\n")
}
