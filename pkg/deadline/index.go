package deadline

import (
	"bytes"
	"fmt"
	"time"

	"github.com/custody/custody/pkg/kv"
)

// Index keeps deadlines in a read model's kv space by due time, for a
// stored scheduler (Store): one key per pending deadline,
//
//	<Prefix> <time key> <deadline key>
//
// with an empty value, where the time key is kv.TimeKey's (8 bytes that
// sort by time), so the keys sort in (at, key) order, the scheduler's. The
// read model sets and deletes them in the batch of the event that opens,
// moves or closes the deadline; it must know the old time to move or
// delete one (the state before the event has it).
type Index struct {
	Prefix []byte
}

// Key is the index key of the deadline key due at at.
func (x Index) Key(key string, at time.Time) []byte {
	k := make([]byte, 0, len(x.Prefix)+8+len(key))
	return append(append(k, x.Prefix...), kv.TimeKey(at, key)...)
}

// Set writes the deadline key due at at to b (a kv.Batch or kv.BatchIn).
func (x Index) Set(b interface{ Set(k, v []byte) error }, key string, at time.Time) error {
	return b.Set(x.Key(key, at), nil)
}

// Delete removes the deadline key due at at from b.
func (x Index) Delete(b interface{ Delete(k []byte) error }, key string, at time.Time) error {
	return b.Delete(x.Key(key, at))
}

// Next returns up to n of s's deadlines in (at, key) order after after
// (nil: from the first): Store.Next over s.
func (x Index) Next(s *kv.Space, after *Entry, n int) ([]Entry, error) {
	var out []Entry
	if n <= 0 {
		return out, nil
	}
	err := x.Scan(s, after, func(e Entry) bool {
		out = append(out, e)
		return len(out) < n
	})
	return out, err
}

// Scan calls fn with s's deadlines in (at, key) order after after (nil:
// from the first) until fn returns false.
func (x Index) Scan(s *kv.Space, after *Entry, fn func(Entry) bool) error {
	from := x.Prefix
	if after != nil {
		from = append(x.Key(after.Key, after.At), 0) // the first key after it
	}
	var ferr error
	err := s.Scan(from, kv.PrefixEnd(x.Prefix), false, func(k, _ []byte) bool {
		rest, ok := bytes.CutPrefix(k, x.Prefix)
		at, tok := kv.TimeOfKey(rest)
		if !ok || !tok {
			ferr = fmt.Errorf("deadline index: malformed key %q", k)
			return false
		}
		return fn(Entry{Key: string(rest[8:]), At: at})
	})
	if err == nil {
		err = ferr
	}
	return err
}
