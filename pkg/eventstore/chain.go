package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// canonicalVersion prefixes the canonical bytes so that the encoding can
// evolve without old hashes changing meaning. Version 2 adds the request
// fingerprint; an event without one is encoded as version 1, exactly as
// before it existed, so the hashes of older events still verify.
const (
	canonicalVersion            = 1
	canonicalVersionFingerprint = 2
)

// GenesisHash is the PrevHash of a stream's first event.
var GenesisHash = make([]byte, sha256.Size)

// CanonicalBytes is the byte string an event's hash covers: every fact of the
// event (id, type, stream, revision, recorded time, correlation, causation,
// actor, payload and, if it has one, the request fingerprint), each
// length-prefixed so no two events share an encoding. The global position
// and trace context are not facts of the event and are left out (the
// position is only known after the append).
func CanonicalBytes(e *RecordedEvent) []byte {
	b := make([]byte, 0, 1+8*binary.MaxVarintLen64+16+len(e.ID)+len(e.Type)+len(e.Stream)+len(e.Metadata.CorrelationID)+
		len(e.Metadata.CausationID)+len(e.Metadata.Actor)+len(e.Data)+len(e.Metadata.RequestFingerprint))
	if e.Metadata.RequestFingerprint != "" {
		b = append(b, canonicalVersionFingerprint)
	} else {
		b = append(b, canonicalVersion)
	}
	b = appendField(b, e.ID)
	b = appendField(b, e.Type)
	b = appendField(b, e.Stream)
	b = binary.BigEndian.AppendUint64(b, e.Revision)
	b = binary.BigEndian.AppendUint64(b, uint64(e.RecordedAt.UnixNano()))
	b = appendField(b, e.Metadata.CorrelationID)
	b = appendField(b, e.Metadata.CausationID)
	b = appendField(b, e.Metadata.Actor)
	b = appendField(b, e.Data)
	if e.Metadata.RequestFingerprint != "" {
		b = appendField(b, e.Metadata.RequestFingerprint)
	}
	return b
}

// appendField appends p to b, prefixed with its length.
func appendField[T string | []byte](b []byte, p T) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// Hash computes SHA-256(prev || CanonicalBytes(e)).
func Hash(prev []byte, e *RecordedEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(CanonicalBytes(e))
	return h.Sum(nil)
}

// Seal fills in PrevHash and Hash of e, which follows prev in its stream.
func Seal(prev []byte, e *RecordedEvent) {
	if prev == nil {
		prev = GenesisHash
	}
	e.PrevHash = bytes.Clone(prev)
	e.Hash = Hash(prev, e)
}

// ChainError says where a stream's history stops being verifiable.
// errors.Is(err, ErrChainBroken) holds.
type ChainError struct {
	Stream   string
	Revision uint64 // the first event that does not verify
	EventID  string
	Reason   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("eventstore: hash chain of %s broken at revision %d (event %s): %s", e.Stream, e.Revision, e.EventID, e.Reason)
}

func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }

// VerifyChain checks a stream's events from revision 0 in order: revisions
// are consecutive, each PrevHash is the previous Hash, and each Hash is what
// the event's content hashes to. It returns the count verified, or a
// *ChainError naming the first event that fails.
func VerifyChain(events []RecordedEvent) (int, error) {
	prev := GenesisHash
	for i := range events {
		e := &events[i]
		fail := func(reason string, args ...any) (int, error) {
			return i, &ChainError{Stream: e.Stream, Revision: e.Revision, EventID: e.ID, Reason: fmt.Sprintf(reason, args...)}
		}
		if i > 0 && e.Stream != events[0].Stream {
			return fail("event of stream %s in the history of %s", e.Stream, events[0].Stream)
		}
		if e.Revision != uint64(i) {
			return fail("revision %d where %d was expected (event dropped or reordered)", e.Revision, i)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return fail("previous hash %s does not match the hash %s of revision %d", short(e.PrevHash), short(prev), i-1)
		}
		if want := Hash(prev, e); !bytes.Equal(e.Hash, want) {
			return fail("content hashes to %s but %s is recorded (event edited)", short(want), short(e.Hash))
		}
		prev = e.Hash
	}
	return len(events), nil
}

func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
