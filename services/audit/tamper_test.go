package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/highwayhash"

	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/internal/story"
)

// TestTamperedStoreOnDisk is the tamper test on the real store:
// run the services' events into an embedded JetStream, stop it, copy its
// data directory, edit one stored event's bytes in the copy's message block
// file (a letter of the recipient's name in the proof of delivery, same
// length), start a server on the copy and ask VerifyOrderChain over gRPC.
//
// nats-server keeps a checksum (HighwayHash-64) per message record. It
// guards against bit rot, not against an editor: its key is derived from
// the stream's name and the block's number, so whoever can write the file
// can recompute it. Both edits are tried:
//
//   - with the record checksum recomputed, the server serves the edited
//     event as if nothing happened; only the hash chain notices, and
//     VerifyOrderChain names exactly that event (service, stream,
//     revision, event id): "content hashes to … but … is recorded";
//   - with the checksum left stale, the server itself refuses the record
//     (see below for what it does), and VerifyOrderChain still reports the
//     chain broken at exactly that revision.
func TestTamperedStoreOnDisk(t *testing.T) {
	t.Parallel()
	origDir := t.TempDir()
	orig, s := startWithStory(t, origDir)
	before, err := as(t, orig, "support").VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if !before.GetValid() {
		t.Fatalf("the untouched store does not verify: %v", before)
	}
	// The event to edit: the DELIVERED scan, the only one naming the recipient.
	stream := "fulfilment-" + s.FulfilmentID
	stored, err := orig.Store(t, "fulfilment").ReadStream(t.Context(), stream, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	target, ok := story.ProofOfDelivery(stored)
	if !ok {
		t.Fatal("no stored event names the recipient")
	}
	// Stop the process and NATS, cleanly: the server writes its stream
	// state, and the data directory stays.
	orig.Close()

	for _, fix := range []bool{true, false} {
		name := "checksum recomputed"
		if !fix {
			name = "checksum left stale"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := copyDir(filepath.Join(origDir, "nats"), filepath.Join(dir, "nats")); err != nil {
				t.Fatal(err)
			}
			streamDir := filepath.Join(dir, "nats", "jetstream", "$G", "streams", esjs.StreamNameFor("fulfilment"))
			editRecord(t, streamDir, []byte(story.Recipient), []byte("Krace Hopper"), fix)

			copied, _ := startAudit(t, dir)
			support := as(t, copied, "support")
			resp, err := support.VerifyOrderChain(t.Context(), &auditv1.VerifyOrderChainRequest{OrderId: "o1"})
			if err != nil {
				t.Fatal(err)
			}
			b := resp.GetBrokenLink()
			t.Logf("verdict: valid=%v checked=%d broken=%v", resp.GetValid(), resp.GetEventsChecked(), b)
			if resp.GetValid() || b == nil {
				t.Fatalf("the edited store verified: %v", resp)
			}
			broken := 0
			for _, c := range resp.GetStreams() {
				if !c.GetValid() {
					broken++
				}
			}
			// The replay rests on the same streams: it says so.
			r, err := support.ReplayOrder(t.Context(), &auditv1.ReplayOrderRequest{OrderId: "o1"})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetChainValid() || r.GetBrokenLink().GetService() != "fulfilment" {
				t.Errorf("replay: chain valid %v, broken link %v", r.GetChainValid(), r.GetBrokenLink())
			}
			if !fix {
				// nats-server refuses the record: reads of it say "message
				// not found", consumers never deliver it, yet the stream's
				// state still counts it. The store cannot say which stream
				// the unreadable record belongs to; the audit service can
				// only say that the fulfilment store holds events it cannot
				// read after the last readable one, and refuse to call the
				// order's history intact.
				if b.GetService() != "fulfilment" || b.GetStream() != "" || !strings.Contains(b.GetReason(), "can be read") || broken != 0 {
					t.Errorf("broken link %v (%d streams broken), want the fulfilment store's unreadable events", b, broken)
				}
				return
			}
			if b.GetService() != "fulfilment" || b.GetStream() != stream || b.GetRevision() != target.Revision {
				t.Fatalf("broken link %v, want fulfilment/%s revision %d", b, stream, target.Revision)
			}
			if broken != 1 {
				t.Errorf("%d streams broken, want only the edited one", broken)
			}
			// The server serves the edited event; the chain catches it.
			if b.GetEventId() != target.ID || !strings.Contains(b.GetReason(), "event edited") {
				t.Errorf("broken link %v, want event %s edited", b, target.ID)
			}
			if r.GetBrokenLink().GetEventId() != target.ID {
				t.Errorf("replay: broken link %v, want event %s", r.GetBrokenLink(), target.ID)
			}
			tl, err := support.GetOrderTimeline(t.Context(), &auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range tl.GetEvents() {
				if ev.GetEventId() == target.ID {
					found = strings.Contains(ev.GetPayloadJson(), "Krace Hopper")
				}
			}
			if !found {
				t.Errorf("the timeline does not show the edited event as stored")
			}
		})
	}
}

// editRecord replaces find (which must occur exactly once in the stream's
// message blocks) with repl of the same length, in place. With fixChecksum
// it recomputes the record's checksum as nats-server does (HighwayHash-64
// keyed with SHA-256("<stream>-<block>") over sequence, timestamp,
// subject, headers and payload), so the server accepts the edit.
func editRecord(t *testing.T, streamDir string, find, repl []byte, fixChecksum bool) {
	t.Helper()
	const (
		msgHdrSize = 22 // record length, sequence, timestamp, subject length
		hashSize   = 8
		hbit       = 1 << 31
	)
	blocks, err := filepath.Glob(filepath.Join(streamDir, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no message blocks in %s: %v", streamDir, err)
	}
	edited := 0
	for _, path := range blocks {
		buf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(buf, find)
		if at < 0 {
			continue
		}
		if bytes.Count(buf, find) != 1 {
			t.Fatalf("%s holds %q more than once", path, find)
		}
		blk, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".blk"))
		if err != nil {
			t.Fatal(err)
		}
		key := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", filepath.Base(streamDir), blk)))
		hh, err := highwayhash.NewDigest64(key[:])
		if err != nil {
			t.Fatal(err)
		}
		checksum := func(rec []byte, hasHeaders bool) []byte {
			slen := int(binary.LittleEndian.Uint16(rec[20:]))
			data := rec[msgHdrSize:]
			hh.Reset()
			hh.Write(rec[4:20])
			hh.Write(data[:slen])
			if hasHeaders {
				hh.Write(data[slen+4 : len(data)-hashSize])
			} else {
				hh.Write(data[slen : len(data)-hashSize])
			}
			return hh.Sum(nil)
		}
		for i := 0; i+msgHdrSize <= len(buf); {
			rl := binary.LittleEndian.Uint32(buf[i:])
			hasHeaders := rl&hbit != 0
			rl &^= hbit
			if rl < msgHdrSize+hashSize || i+int(rl) > len(buf) {
				t.Fatalf("%s: cannot parse the record at offset %d", path, i)
			}
			rec := buf[i : i+int(rl)]
			if at >= i && at+len(find) <= i+int(rl) {
				sum := rec[len(rec)-hashSize:]
				if !bytes.Equal(checksum(rec, hasHeaders), sum) {
					t.Fatalf("%s: the record's checksum does not compute as expected; the test's idea of the format is wrong", path)
				}
				copy(buf[at:], repl)
				if fixChecksum {
					copy(sum, checksum(rec, hasHeaders))
				}
				t.Logf("edited the record of sequence %d in %s (checksum recomputed: %v)", binary.LittleEndian.Uint64(rec[4:]), filepath.Base(path), fixChecksum)
				edited++
				break
			}
			i += int(rl)
		}
		if err := os.WriteFile(path, buf, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if edited != 1 {
		t.Fatalf("edited %d records, want 1", edited)
	}
}

// copyDir copies a directory tree (the NATS data of a stopped server).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		if !d.Type().IsRegular() {
			return errors.New("not a regular file: " + path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o640)
	})
}
