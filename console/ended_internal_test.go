package console

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestNoStateAfterEnded: a state being sent while the run ends (its
// proxies read, say) is not sent after "ended", which must be the last
// event of every page. A page's stream keeps only the newest unsent
// event, so a state sent after "ended" would even replace it.
func TestNoStateAfterEnded(t *testing.T) {
	for i := range 300 {
		c, err := New(Options{Run: true, ReportsDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		page, ok := c.events.subscribe()
		if !ok {
			t.Fatal("subscribe: the console is closed")
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 20 {
				c.publish(t.Context(), time.Now())
			}
		})
		c.RunEnded()
		wg.Wait()
		if msg := <-page; !bytes.HasPrefix(msg, []byte("event: ended\n")) {
			t.Fatalf("round %d: the page's last event is %.40q, want ended", i, msg)
		}
	}
}
