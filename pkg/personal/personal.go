// Package personal keeps personal data out of the immutable log by
// crypto-shredding.
//
// Fields marked `(custody.type.v1.personal) = true` in the protos (a
// recipient's name, phone, street and postal code, a proof of delivery's
// name and place, the free text people write about a buyer's order or
// claim: evidence, reasons, rationales, notes) belong to the data subject
// their event names with `(custody.type.v1.data_subject)`, e.g.
// "buyer:buyer_id".
// Before an event is encoded and sealed into its stream's hash chain, the
// command handler (pkg/es) passes it through Codec.Seal, which replaces
// each such value by a token: the value encrypted with AES-256-GCM under
// the subject's data key, with the key's id beside the ciphertext. The
// chain covers the tokens, so it verifies before and after an erasure.
//
// Data keys live apart from the log, in Keys (a JetStream key-value bucket
// that allows deletion, KVKeys), wrapped by a master key (Keyring).
// Erasing a subject destroys its key: its tokens stay in every stream,
// snapshot, read model and dead-letter copy, and nobody can read them
// again. Reveal turns tokens back into values where a person is shown
// them (the gRPC answers, the audit's timeline, an export); a token whose
// key was erased reads Erased, and one whose key is missing for any other
// reason is an error (ErrNoKey), never a silent blank.
//
// Nothing in the process holds personal data in clear but the request that
// brings it and the answer that shows it: aggregates, caches, snapshots and
// read models hold tokens.
package personal

import (
	"context"
	"errors"
)

// Erased is what a personal field reads after its subject was erased.
const Erased = "[erased]"

var (
	// ErrErased: the subject was erased; its data key is gone for good.
	ErrErased = errors.New("personal: the data subject was erased")
	// ErrNoKey: no data key for the subject, and it was not erased. For a
	// token, that is damage or a key store that is not the one the data
	// was written with; for Keys.Erase, a subject Custody holds no personal
	// data of.
	ErrNoKey = errors.New("personal: no data key for the data subject")
)

// Keys stores one data key per data subject.
type Keys interface {
	// DataKey returns subject's 32-byte data key. With create, a subject
	// without one gets a new key (concurrent creators agree on one).
	// ErrErased when the subject was erased; ErrNoKey when it has none and
	// create is false.
	DataKey(ctx context.Context, subject string, create bool) ([]byte, error)
	// Erase destroys subject's data key for good and remembers that it
	// was erased. ErrNoKey when the subject has no key; ErrErased when it
	// was erased before.
	Erase(ctx context.Context, subject string) error
}

// Subject is the id of a data subject's key: "<kind>-<id>", e.g.
// "buyer-b1" (kind "buyer", "creator" or "courier").
func Subject(kind, id string) string { return kind + "-" + id }
