package domain_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	"github.com/custody/custody/services/fulfilment/domain"
)

// TestScansCommute is the property the delivery record rests on: any
// permutation of the same set of carrier scans, with duplicates, ends in
// the same state and the same deduplicated history, records every distinct
// scan exactly once, and delivers (or fails) a shipment at most once.
//
// Each scenario (seeded, so a failure names its seed) ships the fulfilment
// in one or two shipments — sometimes leaving a line unshipped — and draws
// up to 14 scans over both tracking numbers: any of the nine statuses,
// occur times on a coarse grid so that ties happen, proof on some DELIVERED
// scans, and each scan sent one to three times.
func TestScansCommute(t *testing.T) {
	const scenarios, permutations = 300, 25
	for seed := range uint64(scenarios) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		base, cmds := scenario(rng)
		refState, refEvents := run(t, seed, base, cmds)
		refHistory := history(refState)
		for p := range permutations {
			perm := slices.Clone(cmds)
			rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			state, events := run(t, seed, base, perm)
			// reflect.DeepEqual first: cmp is slow, and only needed to explain.
			if !reflect.DeepEqual(refState, state) {
				t.Fatalf("seed %d, permutation %d: state differs (-first +this):\n%s", seed, p, cmp.Diff(refState, state, protocmp.Transform()))
			}
			if h := history(state); !slices.Equal(refHistory, h) {
				t.Fatalf("seed %d, permutation %d: history differs:\n%s", seed, p, cmp.Diff(refHistory, h))
			}
			checkEvents(t, seed, state, events)
		}
		checkEvents(t, seed, refState, refEvents)
	}
}

// scenario returns a shipped fulfilment and the scan commands to apply
// (duplicates included).
func scenario(rng *rand.Rand) (domain.Fulfilment, []domain.RecordScan) {
	f := domain.Evolve(domain.Decider.Initial(fid), requested())
	type parcel struct{ carrier, number string }
	var parcels []parcel
	split, unshipped := rng.IntN(2) == 0, rng.IntN(5) == 0
	first := shippedAll()
	if split || unshipped {
		first.Lines = domain.LinesProto([]domain.Line{{LineID: "1", SKUID: "sku-a", Quantity: 2}})
		first.FullyShipped = false
	}
	f = domain.Evolve(f, first)
	parcels = append(parcels, parcel{"dhl", "1234567890"})
	if split && !unshipped {
		f = domain.Evolve(f, &fulfilmentv1.FulfilmentShipped{FulfilmentId: fid, ShipmentId: "s2", Carrier: "ups", TrackingNumber: "1Z999AA10123456784",
			Lines: domain.LinesProto([]domain.Line{{LineID: "3", SKUID: "sku-c", Quantity: 1}}), ShipTime: ts(2 * time.Hour), FullyShipped: true})
		parcels = append(parcels, parcel{"ups", "1Z999AA10123456784"})
	}
	var cmds []domain.RecordScan
	for i := range 1 + rng.IntN(14) {
		p := parcels[rng.IntN(len(parcels))]
		status := domain.TrackingStatus(1 + rng.IntN(9))
		var proof *domain.Proof
		if status == domain.Delivered && rng.IntN(2) == 0 {
			proof = &domain.Proof{RecipientName: fmt.Sprintf("R%d", i), PhotoSHA256: hash}
		}
		c := domain.RecordScan{Carrier: p.carrier, TrackingNumber: p.number, Now: t0.Add(30 * 24 * time.Hour),
			Scan: domain.Scan{CarrierEventID: fmt.Sprintf("ev-%02d", i), Status: status,
				OccurTime: t0.Add(time.Duration(rng.IntN(12)) * 6 * time.Hour), Location: "L", Proof: proof}}
		for range 1 + rng.IntN(3) {
			cmds = append(cmds, c)
		}
	}
	return f, cmds
}

// run applies the commands one by one, as the handler would.
func run(t *testing.T, seed uint64, f domain.Fulfilment, cmds []domain.RecordScan) (domain.Fulfilment, []proto.Message) {
	t.Helper()
	var all []proto.Message
	for _, c := range cmds {
		evs, err := domain.Decide(f, c)
		if err != nil {
			t.Fatalf("seed %d: %s: %v", seed, c.Scan.CarrierEventID, err)
		}
		for _, e := range evs {
			f = domain.Evolve(f, e)
		}
		all = append(all, evs...)
	}
	return f, all
}

// history is every shipment's recorded scans, in the order they are shown.
func history(f domain.Fulfilment) []string {
	var out []string
	for _, s := range f.Shipments {
		for _, sc := range s.Scans {
			out = append(out, fmt.Sprintf("%s %s %s %s", s.ID, sc.CarrierEventID, sc.Status, sc.OccurTime.Format(time.RFC3339)))
		}
	}
	return out
}

func checkEvents(t *testing.T, seed uint64, final domain.Fulfilment, events []proto.Message) {
	t.Helper()
	recorded := map[string]int{}
	failed := map[string]int{}
	delivered := 0
	for _, e := range events {
		switch e := e.(type) {
		case *fulfilmentv1.TrackingEventRecorded:
			recorded[e.GetCarrierEventId()]++
		case *fulfilmentv1.DeliveryFailed:
			failed[e.GetShipmentId()]++
		case *fulfilmentv1.FulfilmentDelivered:
			delivered++
		}
	}
	distinct := 0
	for _, s := range final.Shipments {
		distinct += len(s.Scans)
		for _, sc := range s.Scans {
			if recorded[sc.CarrierEventID] != 1 {
				t.Fatalf("seed %d: scan %s recorded %d times", seed, sc.CarrierEventID, recorded[sc.CarrierEventID])
			}
		}
		if failed[s.ID] > 1 {
			t.Fatalf("seed %d: shipment %s failed %d times", seed, s.ID, failed[s.ID])
		}
	}
	if len(recorded) != distinct {
		t.Fatalf("seed %d: %d scans recorded, %d distinct", seed, len(recorded), distinct)
	}
	isDelivered := final.Status() == domain.StatusDelivered
	if (isDelivered && delivered != 1) || (!isDelivered && delivered != 0) {
		t.Fatalf("seed %d: final status %v, %d FulfilmentDelivered", seed, final.Status(), delivered)
	}
}
