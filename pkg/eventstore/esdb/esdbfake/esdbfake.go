// Package esdbfake is an in-process stand-in for EventStoreDB's gRPC
// Streams service, for tests only: no EventStoreDB server can run on our
// machines. See Server for what it models and what passing against it
// does and does not say.
package esdbfake

// Server is an in-process stand-in for EventStoreDB's gRPC Streams
// service, just enough for the real client library to talk to: Append with
// expected revisions and the server's idempotency rule, stream reads,
// $all reads and filtered $all catch-up subscriptions. It exists because no
// EventStoreDB server can run here. It models the server as read from its
// source (KurrentDB StorageWriterService.CheckCommit, AllReader,
// Streams.Append/Read); it is NOT EventStoreDB, and passing against it says
// that this package drives the client library the way it means to, not that
// a real server behaves the way the fake does.
//
// Positions: each event is a self-committed record at a log offset (commit
// = prepare = offset). With sparse set, offsets grow by the record size, as
// on a real server; otherwise they are 1, 2, 3… (see the conformance test).

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type fakeRecord struct {
	pos     uint64
	stream  string
	rev     uint64
	id      uuid.UUID
	typ     string
	ctype   string
	custom  []byte
	data    []byte
	created int64 // .NET ticks since the unix epoch
}

type Server struct {
	api.UnimplementedStreamsServer
	sparse bool

	mu      sync.Mutex
	log     []*fakeRecord
	byPos   map[uint64]int
	streams map[string][]int
	next    uint64
	notify  chan struct{}
	// dropAcks makes the next appends store their events and then fail
	// with Unavailable, as a lost acknowledgement would.
	dropAcks int
	// appends counts Append calls that reached the server.
	appends int
	// kill is closed to drop every live subscription with Unavailable.
	kill chan struct{}

	addr string
	srv  *grpc.Server
}

// Start serves a fake on a loopback port until the test ends. With sparse,
// positions jump by each record's size, as on a real server; otherwise they
// are 1, 2, 3….
func Start(t testing.TB, sparse bool) *Server {
	t.Helper()
	f := &Server{sparse: sparse, byPos: map[uint64]int{}, streams: map[string][]int{}, next: 1, notify: make(chan struct{}), kill: make(chan struct{})}
	if sparse {
		f.next = 4096
	}
	// A system event first, as every real log has.
	f.store("$settings", "$settings", uuid.New(), []byte(`{}`), nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	f.srv = grpc.NewServer()
	api.RegisterStreamsServer(f.srv, f)
	go f.srv.Serve(lis)
	t.Cleanup(f.srv.Stop)
	return f
}

// URL is the connection string of the fake.
func (f *Server) URL() string { return "esdb://" + f.addr + "?tls=false" }

// Stop stops the server, as a crash of EventStoreDB would look to clients.
func (f *Server) Stop() { f.srv.Stop() }

// DropAcks makes the next n appends store their events and then fail with
// Unavailable, as a lost acknowledgement would.
func (f *Server) DropAcks(n int) {
	f.mu.Lock()
	f.dropAcks = n
	f.mu.Unlock()
}

// Appends counts the Append calls that reached the server.
func (f *Server) Appends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appends
}

// store appends one record; f.mu is held (or not yet shared).
func (f *Server) store(stream, typ string, id uuid.UUID, data, custom []byte) *fakeRecord {
	r := &fakeRecord{pos: f.next, stream: stream, rev: uint64(len(f.streams[stream])), id: id, typ: typ,
		ctype: "application/octet-stream", custom: custom, data: data, created: time.Now().UnixNano() / 100}
	if f.sparse {
		f.next += uint64(80 + len(stream) + len(typ) + len(data) + len(custom))
	} else {
		f.next++
	}
	f.byPos[r.pos] = len(f.log)
	f.streams[stream] = append(f.streams[stream], len(f.log))
	f.log = append(f.log, r)
	return r
}

// Foreign writes an event that is not the store's (another service, a
// system stream) straight into the log.
func (f *Server) Foreign(stream, typ string) {
	f.mu.Lock()
	f.store(stream, typ, uuid.New(), []byte("x"), []byte("not json"))
	f.wake()
	f.mu.Unlock()
}

func (f *Server) wake() {
	close(f.notify)
	f.notify = make(chan struct{})
}

// DropSubscriptions ends every live subscription with Unavailable.
func (f *Server) DropSubscriptions() {
	f.mu.Lock()
	close(f.kill)
	f.kill = make(chan struct{})
	f.mu.Unlock()
}

func empty() *shared.Empty { return &shared.Empty{} }

func (f *Server) Append(as api.Streams_AppendServer) error {
	req, err := as.Recv()
	if err != nil {
		return err
	}
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "options first")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	type proposed struct {
		id           uuid.UUID
		typ, ctype   string
		data, custom []byte
	}
	var evs []proposed
	for {
		req, err := as.Recv()
		if err != nil {
			break
		}
		m := req.GetProposedMessage()
		s := m.GetId().GetStructured()
		id, err := uuidFrom(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if m.Metadata["type"] == "" || m.Metadata["content-type"] == "" {
			return status.Error(codes.InvalidArgument, "Required Metadata Property 'type' is missing")
		}
		evs = append(evs, proposed{id, m.Metadata["type"], m.Metadata["content-type"], m.Data, m.CustomMetadata})
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends++
	idx := f.streams[stream]
	exists := len(idx) > 0
	cur := uint64(len(idx)) - 1
	// idempotent: the ids sit at start…, all of them (CheckCommit).
	idempotent := func(start uint64) bool {
		if start+uint64(len(evs)) > uint64(len(idx)) {
			return false
		}
		for i, e := range evs {
			if f.log[idx[start+uint64(i)]].id != e.id {
				return false
			}
		}
		return true
	}
	wrong := func() error {
		w := &api.AppendResp_WrongExpectedVersion{}
		if exists {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: cur}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty()}
		}
		switch x := opts.ExpectedStreamRevision.(type) {
		case *api.AppendReq_Options_Revision:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: x.Revision}
		case *api.AppendReq_Options_NoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty()}
		default:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty()}
		}
		return as.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}})
	}
	dup := func(start uint64) error {
		return as.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: start + uint64(len(evs)) - 1},
			PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: empty()},
		}}})
	}
	switch x := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_NoStream:
		if exists {
			if idempotent(0) {
				return dup(0)
			}
			return wrong()
		}
	case *api.AppendReq_Options_Revision:
		if !exists || x.Revision > cur {
			return wrong()
		}
		if x.Revision < cur {
			if idempotent(x.Revision + 1) {
				return dup(x.Revision + 1)
			}
			return wrong()
		}
	case *api.AppendReq_Options_StreamExists:
		if !exists {
			return wrong()
		}
	case *api.AppendReq_Options_Any:
		for start := uint64(0); exists && start+uint64(len(evs)) <= uint64(len(idx)); start++ {
			if f.log[idx[start]].id == evs[0].id && idempotent(start) {
				return dup(start)
			}
		}
	}
	var last *fakeRecord
	for _, e := range evs {
		last = f.store(stream, e.typ, e.id, e.data, e.custom)
		last.ctype = e.ctype
	}
	f.wake()
	if f.dropAcks > 0 {
		f.dropAcks--
		return status.Error(codes.Unavailable, "fake: acknowledgement lost")
	}
	return as.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.rev},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: last.pos, PreparePosition: last.pos}},
	}}})
}

func uuidFrom(most, least int64) (uuid.UUID, error) {
	var b [16]byte
	for i := range 8 {
		b[i] = byte(uint64(most) >> (56 - 8*i))
		b[8+i] = byte(uint64(least) >> (56 - 8*i))
	}
	return uuid.FromBytes(b[:])
}

func (f *Server) toEvent(r *fakeRecord) *api.ReadResp {
	id := r.id
	var most, least uint64
	for i := range 8 {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: int64(most), LeastSignificantBits: int64(least)}}},
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.rev,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata:         map[string]string{"type": r.typ, "content-type": r.ctype, "created": strconv.FormatInt(r.created, 10)},
			CustomMetadata:   r.custom,
			Data:             r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

func (f *Server) Read(req *api.ReadReq, rs api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o.GetUuidOption() == nil {
		return status.Error(codes.InvalidArgument, "'uuidOption' is a required argument")
	}
	if st := o.GetStream(); st != nil {
		return f.readStream(o, st, rs)
	}
	if o.GetSubscription() != nil {
		return f.subscribeAll(o, rs)
	}
	return f.readAll(o, rs)
}

func (f *Server) readStream(o *api.ReadReq_Options, st *api.ReadReq_Options_StreamOptions, rs api.Streams_ReadServer) error {
	name := string(st.GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	idx := f.streams[name]
	var out []*api.ReadResp
	if len(idx) == 0 {
		f.mu.Unlock()
		return rs.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: st.GetStreamIdentifier()}}})
	}
	count := o.GetCount()
	if o.ReadDirection == api.ReadReq_Options_Forwards {
		from := uint64(0)
		switch x := st.RevisionOption.(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = x.Revision
		case *api.ReadReq_Options_StreamOptions_End:
			from = uint64(len(idx))
		}
		for i := from; i < uint64(len(idx)) && uint64(len(out)) < count; i++ {
			out = append(out, f.toEvent(f.log[idx[i]]))
		}
	} else {
		from := int64(len(idx)) - 1
		if x, ok := st.RevisionOption.(*api.ReadReq_Options_StreamOptions_Revision); ok {
			from = min(int64(x.Revision), from)
		}
		for i := from; i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, f.toEvent(f.log[idx[i]]))
		}
	}
	f.mu.Unlock()
	for _, m := range out {
		if err := rs.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// startIndex is where a forward read of $all from o's position begins.
func (f *Server) startIndex(all *api.ReadReq_Options_AllOptions) (int, error) {
	switch x := all.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_End:
		return len(f.log), nil
	case *api.ReadReq_Options_AllOptions_Position:
		p := x.Position
		if p.CommitPosition >= f.next {
			return len(f.log), nil // past the end: nothing yet
		}
		i, ok := f.byPos[p.CommitPosition]
		if !ok || p.PreparePosition != p.CommitPosition {
			return 0, status.Error(codes.InvalidArgument, "Trying to read from an invalid position.")
		}
		return i, nil
	}
	return 0, nil
}

func (f *Server) readAll(o *api.ReadReq_Options, rs api.Streams_ReadServer) error {
	f.mu.Lock()
	var out []*api.ReadResp
	count := o.GetCount()
	if o.ReadDirection == api.ReadReq_Options_Forwards {
		i, err := f.startIndex(o.GetAll())
		if err != nil {
			f.mu.Unlock()
			return err
		}
		for ; i < len(f.log) && uint64(len(out)) < count; i++ {
			out = append(out, f.toEvent(f.log[i]))
		}
	} else {
		if _, ok := o.GetAll().AllOption.(*api.ReadReq_Options_AllOptions_End); !ok {
			f.mu.Unlock()
			return status.Error(codes.Unimplemented, "fake: backwards reads of $all only from the end")
		}
		for i := len(f.log) - 1; i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, f.toEvent(f.log[i]))
		}
	}
	f.mu.Unlock()
	for _, m := range out {
		if err := rs.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (f *Server) subscribeAll(o *api.ReadReq_Options, rs api.Streams_ReadServer) error {
	var prefixes []string
	if fl := o.GetFilter(); fl != nil {
		if fl.GetStreamIdentifier() == nil || fl.GetStreamIdentifier().Regex != "" {
			return status.Error(codes.Unimplemented, "fake: only stream prefix filters")
		}
		prefixes = fl.GetStreamIdentifier().Prefix
	}
	f.mu.Lock()
	i, err := f.startIndex(o.GetAll())
	if p, ok := o.GetAll().AllOption.(*api.ReadReq_Options_AllOptions_Position); ok && err == nil && i < len(f.log) && f.log[i].pos == p.Position.CommitPosition {
		i++ // a subscription starts after the position
	}
	kill := f.kill
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if err := rs.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: "fake"}}}); err != nil {
		return err
	}
	match := func(r *fakeRecord) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(r.stream, p) {
				return true
			}
		}
		return false
	}
	for {
		f.mu.Lock()
		var batch []*fakeRecord
		for ; i < len(f.log); i++ {
			if match(f.log[i]) {
				batch = append(batch, f.log[i])
			}
		}
		wait := f.notify
		f.mu.Unlock()
		for _, r := range batch {
			if err := rs.Send(f.toEvent(r)); err != nil {
				return err
			}
		}
		select {
		case <-wait:
		case <-kill:
			return status.Error(codes.Unavailable, "fake: subscription dropped")
		case <-rs.Context().Done():
			return rs.Context().Err()
		}
	}
}
