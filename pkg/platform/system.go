package platform

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/clock"
	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	systemv1 "github.com/custody/custody/proto/custody/system/v1"
)

// systemService answers custody.system.v1.SystemService for the process.
type systemService struct {
	systemv1.UnimplementedSystemServiceServer
	version string
	targets []string
	nats    string
	started time.Time
	js      jetstream.JetStream
	clock   clock.Clock
}

func (s *systemService) GetClock(ctx context.Context, _ *systemv1.GetClockRequest) (*systemv1.GetClockResponse, error) {
	if _, ok := auth.CallerFrom(ctx); !ok {
		return nil, apierr.PermissionDenied("no caller")
	}
	_, fake := s.clock.(*clock.Fake)
	return &systemv1.GetClockResponse{Now: timestamppb.New(s.clock.Now()), Fake: fake}, nil
}

func (s *systemService) AdvanceClock(ctx context.Context, req *systemv1.AdvanceClockRequest) (*systemv1.AdvanceClockResponse, error) {
	if c, _ := auth.CallerFrom(ctx); !c.Has(auth.Platform) {
		return nil, apierr.PermissionDenied("only the platform role moves the clock")
	}
	f, ok := s.clock.(*clock.Fake)
	if !ok {
		return nil, apierr.FailedPrecondition("CLOCK_NOT_FAKE", "the clock is wall time; start custody with --clock=fake to move it")
	}
	d := req.GetBy().AsDuration()
	if req.GetBy() == nil || d <= 0 {
		return nil, apierr.InvalidArgument(apierr.FieldViolation{Field: "by", Description: "must be a positive duration"})
	}
	f.Advance(d)
	return &systemv1.AdvanceClockResponse{Now: timestamppb.New(f.Now())}, nil
}

func (s *systemService) GetStatus(ctx context.Context, _ *systemv1.GetStatusRequest) (*systemv1.GetStatusResponse, error) {
	// Operators only: support, platform and internal services.
	if c, _ := auth.CallerFrom(ctx); !c.Has(auth.Support) && !c.Has(auth.Platform) && !c.Has(auth.Service) {
		return nil, apierr.PermissionDenied("system status is for support, platform and service callers")
	}
	resp := &systemv1.GetStatusResponse{
		Version: s.version, Targets: s.targets, Nats: s.nats, StartedTime: timestamppb.New(s.started),
	}
	lister := s.js.ListStreams(ctx)
	var infos []*jetstream.StreamInfo
	for info := range lister.Info() {
		resp.StoredMessages += info.State.Msgs
		if !strings.HasPrefix(info.Config.Name, "CUSTODY_") || info.Config.Name == "CUSTODY_DEADLETTER" {
			continue
		}
		infos = append(infos, info)
	}
	if err := lister.Err(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "listing event streams: %v", err)
	}
	for _, info := range infos {
		// One message per command (pkg/eventstore/jetstream): the stream
		// knows how many messages it holds, i.e. commits (appends), not how
		// many events they carry; counting events would mean reading every
		// message. So Events counts commits. The last position does need the
		// last message's event count: it is sequence << 16 | last index.
		last := info.State.LastSeq << esjs.PositionIndexBits
		if st, err := s.js.Stream(ctx, info.Config.Name); err == nil {
			if p, err := esjs.LastPosition(ctx, st, info.State.LastSeq); err == nil {
				last = p
			}
		}
		resp.EventStreams = append(resp.EventStreams, &systemv1.EventStream{
			Service:      strings.ToLower(strings.TrimPrefix(info.Config.Name, "CUSTODY_")),
			Stream:       info.Config.Name,
			Events:       info.State.Msgs,
			LastPosition: last,
			Bytes:        info.State.Bytes,
			Replicas:     int32(info.Config.Replicas),
		})
	}
	return resp, nil
}
