package store

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	paymentv1 "github.com/fallacies/fallacies/services/api/payment/v1"
)

func newCharge() *paymentv1.Charge { return new(paymentv1.Charge) }

func TestRecordsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	log, recs, err := Open(path, newCharge)
	if err != nil || len(recs) != 0 {
		t.Fatalf("open new: %v, %d records", err, len(recs))
	}
	want := []*paymentv1.Charge{{ChargeId: "ch-1", OrderId: "o-1", AmountCents: 10}, {ChargeId: "ch-2", OrderId: "o-2", AmountCents: 20}}
	for _, c := range want {
		if err := log.Append(c); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: a killed process never closes its files.
	_, got, err := Open(path, newCharge)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("record %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestTornLastLineIsSkippedAndRepaired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	if err := os.WriteFile(path, []byte(`{"chargeId":"ch-1"}`+"\n"+`{"chargeId":"ch-`), 0o600); err != nil {
		t.Fatal(err)
	}
	log, recs, err := Open(path, newCharge)
	if err != nil || len(recs) != 1 || recs[0].GetChargeId() != "ch-1" {
		t.Fatalf("open torn: %v %v", err, recs)
	}
	if err := log.Append(&paymentv1.Charge{ChargeId: "ch-2"}); err != nil {
		t.Fatal(err)
	}
	log.Close()
	_, recs, err = Open(path, newCharge)
	if err != nil || len(recs) != 2 || recs[1].GetChargeId() != "ch-2" {
		t.Fatalf("after repair: %v %v", err, recs)
	}
}

func TestCorruptMiddleLineIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	os.WriteFile(path, []byte("garbage\n"+`{"chargeId":"ch-1"}`+"\n"), 0o600)
	if _, _, err := Open(path, newCharge); err == nil {
		t.Fatal("want an error naming the line")
	}
}

func TestEmptyPathKeepsNothing(t *testing.T) {
	log, recs, err := Open("", newCharge)
	if log != nil || recs != nil || err != nil {
		t.Fatalf("%v %v %v", log, recs, err)
	}
	if err := log.Append(&paymentv1.Charge{}); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
}
