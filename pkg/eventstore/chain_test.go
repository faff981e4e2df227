package eventstore_test

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/custody/custody/pkg/eventstore"
)

func chainEvent(fingerprint string) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		EventData: eventstore.EventData{ID: "e1", Type: "custody.test.v1.Happened", Data: []byte("payload"),
			Metadata: eventstore.Metadata{CorrelationID: "c", CausationID: "cmd-1", Actor: "buyer:b1", TraceParent: "tp",
				RequestFingerprint: fingerprint}},
		Stream: "order-o1", Revision: 3, RecordedAt: time.Unix(0, 1_700_000_000_123_456_789).UTC(),
	}
}

// An event without a request fingerprint hashes exactly as before the
// fingerprint existed (the hash below was computed by that code), so the
// chains already stored still verify; one with a fingerprint is covered by
// the hash.
func TestRequestFingerprintInTheHash(t *testing.T) {
	old := chainEvent("")
	const golden = "d2b42c7928e4923565a7ce6ee67396f1fa7bb58da66851d86fb1ffe9236d0b59"
	if got := hex.EncodeToString(eventstore.Hash(eventstore.GenesisHash, &old)); got != golden {
		t.Fatalf("hash of an event without a fingerprint = %s, want %s (hashes of stored events changed)", got, golden)
	}
	e := chainEvent("0123456789abcdef0123456789abcdef")
	eventstore.Seal(nil, &e)
	if hex.EncodeToString(e.Hash) == golden {
		t.Fatal("the fingerprint is not covered by the hash")
	}
	if _, err := eventstore.VerifyChain([]eventstore.RecordedEvent{rev0(e)}); err != nil {
		t.Fatalf("sealed event does not verify: %v", err)
	}
	for name, fp := range map[string]string{"edited": "0123456789abcdef0123456789abcdee", "removed": ""} {
		t.Run(name, func(t *testing.T) {
			tampered := rev0(e)
			tampered.Metadata.RequestFingerprint = fp
			if _, err := eventstore.VerifyChain([]eventstore.RecordedEvent{tampered}); !errors.Is(err, eventstore.ErrChainBroken) {
				t.Fatalf("fingerprint %s: verify = %v, want a broken chain", name, err)
			}
		})
	}
}

// rev0 makes e the first event of its stream, sealed.
func rev0(e eventstore.RecordedEvent) eventstore.RecordedEvent {
	e.Revision = 0
	eventstore.Seal(nil, &e)
	return e
}
