package jetstream_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/eventstore/jetstream"
	eventstorev1 "github.com/custody/custody/proto/custody/eventstore/v1"
)

// referenceDecode is what Decode did with proto.Unmarshal before it read
// commits by hand: the hand decoder must agree with it on every input.
func referenceDecode(subject string, seq uint64, data []byte) ([]eventstore.RecordedEvent, error) {
	var c eventstorev1.Commit
	if err := proto.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	n := len(c.Events)
	if n == 0 || n > jetstream.MaxCommitEvents {
		return nil, fmt.Errorf("%d events", n)
	}
	out := make([]eventstore.RecordedEvent, n)
	next := map[string]uint64{}
	for i, pe := range c.Events {
		if pe.GetId() == "" || pe.GetType() == "" {
			return nil, fmt.Errorf("no id or type")
		}
		stream := pe.GetStream()
		if stream == "" {
			_, s, err := jetstream.StreamFromSubject(subject)
			if err != nil {
				return nil, err
			}
			stream = s
		}
		if _, _, err := eventstore.SplitStream(stream); err != nil {
			return nil, err
		}
		if want, ok := next[stream]; ok && pe.GetRevision() != want {
			return nil, fmt.Errorf("revision")
		}
		if pe.GetRevision() == ^uint64(0) {
			return nil, fmt.Errorf("overflow")
		}
		next[stream] = pe.GetRevision() + 1
		out[i] = eventstore.RecordedEvent{
			EventData: eventstore.EventData{
				ID: pe.GetId(), Type: pe.GetType(), Data: pe.GetData(),
				Metadata: eventstore.Metadata{
					CorrelationID: pe.GetCorrelationId(), CausationID: pe.GetCausationId(), Actor: pe.GetActor(),
					TraceParent: pe.GetTraceparent(), TraceState: pe.GetTracestate(), RequestFingerprint: pe.GetRequestFingerprint(),
				},
			},
			Stream: stream, Revision: pe.GetRevision(), Position: jetstream.Position(seq, i),
			RecordedAt: time.Unix(0, pe.GetRecordedAtUnixNano()).UTC(), PrevHash: pe.GetPrevHash(), Hash: pe.GetHash(),
		}
	}
	return out, nil
}

// FuzzDecodeMatchesProto: on any bytes, Decode accepts exactly what
// proto.Unmarshal and the commit's rules accept, and returns the same
// events; DecodeSelected returns those of the wanted types and leaves the
// others zero but for their position.
func FuzzDecodeMatchesProto(f *testing.F) {
	two := append(sealedCommit("order-o1", 7, 2), sealedCommit("reservation-r1", 0, 1)...)
	for _, evs := range [][]eventstore.RecordedEvent{sealedCommit("order-o1", 7, 1), sealedCommit("order-o1", 7, 3), two} {
		m, err := jetstream.EncodeCommit("custody.order.p.0", evs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("custody.order.p.0", uint64(3), m.Data)
		// An unknown field, a field of the wrong wire type, a repeated field.
		f.Add("custody.order.order.o1", uint64(3), append(bytes.Clone(m.Data), 0x78, 0x01, 0x0a, 0x04, 0x20, 0x01, 0x10, 0x05))
	}
	f.Add("custody.order.order.o1", uint64(1), []byte{0x0a, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, 'T'})
	f.Add("custody.order.order.o1", uint64(1), []byte{0x0a, 0x06, 0x0a, 0x01, 0xff, 0x12, 0x01, 'T'})
	f.Add("custody.order.order.o1", uint64(1), []byte{0x0b, 0x0c})
	f.Fuzz(func(t *testing.T, subject string, seq uint64, data []byte) {
		want, wantErr := referenceDecode(subject, seq, data)
		got, err := jetstream.Decode(subject, seq, nil, data)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("Decode error %v, proto.Unmarshal's %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode = %+v\nproto.Unmarshal = %+v", got, want)
		}
		odd := func(typ []byte) bool { return len(typ)%2 == 1 }
		sel, err := jetstream.DecodeSelected(subject, seq, nil, data, odd)
		if err != nil {
			t.Fatalf("DecodeSelected fails where Decode does not: %v", err)
		}
		for i := range want {
			w := want[i]
			if !odd([]byte(w.Type)) {
				w = eventstore.RecordedEvent{Position: w.Position}
			}
			if !reflect.DeepEqual(sel[i], w) {
				t.Fatalf("DecodeSelected event %d = %+v, want %+v", i, sel[i], w)
			}
		}
	})
}

// BenchmarkDecode: a commit of ten events of ten streams (a group commit),
// decoded whole (a read model) and by a consumer that wants one of them.
func BenchmarkDecode(b *testing.B) {
	var evs []eventstore.RecordedEvent
	for i := range 10 {
		evs = append(evs, sealedCommit(fmt.Sprintf("order-o%d", i), 1, 1)...)
	}
	evs[3].Type = "custody.test.v1.Wanted"
	m, err := jetstream.EncodeCommit("custody.order.p.0", evs)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		want func([]byte) bool
	}{
		{"all", nil},
		{"one", func(typ []byte) bool { return string(typ) == "custody.test.v1.Wanted" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jetstream.DecodeSelected("custody.order.p.0", 9, nil, m.Data, bc.want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("proto.Unmarshal", func(b *testing.B) { // what Decode was
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceDecode("custody.order.p.0", 9, m.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
