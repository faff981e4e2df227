package kv

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Keys the read models share for lists kept in key order.
//
//	l/ <list> <owner> /  <time key> <id>
//
// where <list> is one byte naming the list (by vendor, by order, …), <owner>
// is length-prefixed, and the time key sorts by time: the big-endian
// nanoseconds since 1970 with the sign bit flipped. A page of a list is a
// Scan of its prefix, in reverse for newest first.

// ListPrefix is the prefix of the entries of owner's list.
func ListPrefix(list byte, owner string) []byte {
	k := append([]byte("l/"), list)
	k = binary.AppendUvarint(k, uint64(len(owner)))
	return append(append(k, owner...), '/')
}

// TimeKey is an entry's place in its list: time first, then id.
func TimeKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())^(1<<63)), id...)
}

// TimeOfKey reads back the time of a TimeKey (ok false: too short).
func TimeOfKey(k []byte) (time.Time, bool) {
	if len(k) < 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)^(1<<63))).UTC(), true
}

// PrefixEnd is the first key after every key that starts with prefix, the
// end of a Scan of them; nil (to the end) when there is none.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
