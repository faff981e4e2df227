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
// Data keys live apart from the log, in Keys (pkg/personal/jskeys: a
// JetStream key-value bucket that allows deletion), wrapped by master keys.
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
	"crypto/cipher"
	"errors"
	"strings"
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

// Keys stores the data subjects' keys. A key has an id, which the tokens
// sealed with it carry; a subject may have several keys, all of which seal
// and open its values.
type Keys interface {
	// DataKey returns the key subject's new values are sealed with (as
	// its AES-256-GCM cipher), and its id. With create, a subject without a
	// key gets one; without, that is ErrNoKey. ErrErased when the subject
	// was erased.
	DataKey(ctx context.Context, subject string, create bool) (id string, key cipher.AEAD, err error)
	// Key returns the key with id. ErrErased when its subject was erased;
	// ErrNoKey when there is no such key.
	Key(ctx context.Context, id string) (cipher.AEAD, error)
	// IsErased reports whether subject was erased.
	IsErased(ctx context.Context, subject string) (bool, error)
	// Erase destroys every key of subject for good and remembers that it
	// was erased. ErrNoKey when the subject has no key; ErrErased when it
	// was erased before.
	Erase(ctx context.Context, subject string) error
}

// SubjectOfKey is the subject whose key id is id ("<subject>.<key>").
func SubjectOfKey(id string) string {
	subject, _, _ := strings.Cut(id, ".")
	return subject
}

// Subject is the id of a data subject's key: "<kind>-<id>", e.g.
// "buyer-b1" (kind "buyer", "creator" or "courier").
func Subject(kind, id string) string { return kind + "-" + id }
