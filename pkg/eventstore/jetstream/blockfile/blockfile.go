// Package blockfile damages nats-server's message block files the way a
// failing disk (or a hand with an editor) would, for the tests that show
// Custody names such damage instead of serving it.
//
// A block file (<store dir>/jetstream/$G/streams/<stream>/msgs/<n>.blk)
// is a run of records: total_len(4) seq(8) ts(8) subj_len(2) subj
// [hdr_len(4) hdr] msg hash(8), little-endian, the high bit of total_len
// set when there are headers. hash is a HighwayHash-64 keyed by
// SHA-256("<stream>-<n>") over seq, ts, subj, hdr and msg.
package blockfile

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/highwayhash"
)

// Msgs is the directory of stream's block files in a server's store dir.
func Msgs(storeDir, stream string) string {
	return filepath.Join(storeDir, "jetstream", "$G", "streams", stream, "msgs")
}

// Edit finds the record of message seq in the block files of msgs and
// lets edit change its message bytes in place. When edit returns true the
// record's checksum is recomputed, so that the server's own check passes
// and only a check above the storage can notice.
func Edit(msgs string, seq uint64, edit func(msg []byte) (reseal bool)) error {
	blocks, err := filepath.Glob(filepath.Join(msgs, "*.blk"))
	if err != nil {
		return err
	}
	stream := filepath.Base(filepath.Dir(msgs))
	le := binary.LittleEndian
	for _, blk := range blocks {
		index, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(blk), ".blk"))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(blk)
		if err != nil {
			return err
		}
		for o := 0; o+22 <= len(b); {
			rl := le.Uint32(b[o:])
			n := int(rl &^ (1 << 31))
			if n < 30 || o+n > len(b) {
				break
			}
			rec := b[o : o+n]
			subjEnd := 22 + int(le.Uint16(rec[20:]))
			hdrEnd := subjEnd
			if rl&(1<<31) != 0 {
				hdrEnd += 4 + int(le.Uint32(rec[subjEnd:]))
			}
			if le.Uint64(rec[4:])&^(1<<63) == seq {
				msg := rec[hdrEnd : n-8]
				if edit(msg) {
					key := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", stream, index)))
					hh, err := highwayhash.NewDigest64(key[:])
					if err != nil {
						return err
					}
					hh.Write(rec[4:20])
					hh.Write(rec[22:subjEnd])
					if hdrEnd > subjEnd {
						hh.Write(rec[subjEnd+4 : hdrEnd])
					}
					hh.Write(msg)
					copy(rec[n-8:], hh.Sum(nil))
				}
				return os.WriteFile(blk, b, 0o600)
			}
			o += n
		}
	}
	return fmt.Errorf("blockfile: no record of message %d in %s", seq, msgs)
}
