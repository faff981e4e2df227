package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/personal"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	order "github.com/custody/custody/services/order/domain"
	ordergrpc "github.com/custody/custody/services/order/grpcapi"
)

// PrivacyServiceName is the gRPC service PrivacyServer implements.
const PrivacyServiceName = "custody.audit.v1.PrivacyService"

// PrivacyServer implements auditv1.PrivacyServiceServer: a buyer's
// data-protection requests (erasure, access), hosted by the audit service,
// which already knows every order's events in every store.
type PrivacyServer struct {
	auditv1.UnimplementedPrivacyServiceServer
	apierr.Edge[*app.Service]
}

// NewPrivacy returns the gRPC server of svc's privacy requests.
func NewPrivacy(svc *app.Service, log *slog.Logger) *PrivacyServer {
	return &PrivacyServer{Edge: apierr.NewEdge(svc, log)}
}

// EraseBuyer implements auditv1.PrivacyServiceServer.
func (s *PrivacyServer) EraseBuyer(ctx context.Context, req *auditv1.EraseBuyerRequest) (*auditv1.EraseBuyerResponse, error) {
	if err := validateErase(req); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	if !privacyAccess.Allows(caller, "EraseBuyer") {
		return nil, apierr.PermissionDenied("erasing a buyer's personal data is for the platform role")
	}
	ev, err := s.App.EraseBuyer(ctx, app.EraseCommand{RequestID: req.GetRequestId(), Fingerprint: apierr.Fingerprint(req),
		Actor: auth.Actor(caller, []auth.Kind{auth.Platform}), BuyerID: req.GetBuyerId(), Reason: req.GetReason()})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &auditv1.EraseBuyerResponse{BuyerId: ev.GetBuyerId(), KeyId: ev.GetKeyId(), OrderIds: ev.GetOrderIds(),
		EraseTime: ev.GetEraseTime()}, nil
}

// ExportBuyerData implements auditv1.PrivacyServiceServer.
func (s *PrivacyServer) ExportBuyerData(ctx context.Context, req *auditv1.ExportBuyerDataRequest) (*auditv1.ExportBuyerDataResponse, error) {
	if err := validateExport(req); err != nil {
		return nil, s.toStatus(ctx, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	if !privacyAccess.Allows(caller, "ExportBuyerData", auth.Role{Kind: auth.Buyer, ID: req.GetBuyerId()}) {
		return nil, apierr.PermissionDenied("a buyer's data is exported for the platform role or the buyer themself")
	}
	x, err := s.App.ExportBuyerData(ctx, req.GetBuyerId())
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	doc, err := exportJSON(x)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &auditv1.ExportBuyerDataResponse{BuyerId: x.BuyerID, Erased: x.Erased, Json: string(doc)}, nil
}

// toStatus maps the privacy requests' own errors, then apierr.FromError.
func (s *PrivacyServer) toStatus(ctx context.Context, err error) error {
	if errors.Is(err, app.ErrPrivacyUnavailable) {
		return apierr.Unavailable("erasure and export are not available in this process (read-only, or no key store)")
	}
	if errors.Is(err, app.ErrIndexBehind) {
		return apierr.Unavailable("the audit index is still catching up with the event stores; retry shortly")
	}
	return apierr.FromError(ctx, s.Log, err)
}

// maxEraseReason bounds an erasure's reason (a case reference).
const maxEraseReason = 500

// checkBuyerID checks a buyer id, which names the erasure's stream.
func checkBuyerID(v *fault.Violations, id string) {
	apierr.Require(v, "buyer_id", id, eventstore.ValidID(id), "not a buyer id: 1-128 letters, digits, '_' or '-'")
}

func validateErase(req *auditv1.EraseBuyerRequest) error {
	var v fault.Violations
	checkBuyerID(&v, req.GetBuyerId())
	apierr.RequestID(&v, req.GetRequestId())
	switch r := req.GetReason(); {
	case r == "":
		v.Add("reason", "required: why the buyer is erased (a case reference, recorded in the audit trail; no personal data)")
	case utf8.RuneCountInString(r) > maxEraseReason:
		v.Add("reason", "at most %d characters", maxEraseReason)
	}
	return v.Err()
}

func validateExport(req *auditv1.ExportBuyerDataRequest) error {
	var v fault.Violations
	checkBuyerID(&v, req.GetBuyerId())
	return v.Err()
}

// The export document (ExportBuyerDataResponse.json).
type (
	exportDoc struct {
		BuyerID string        `json:"buyer_id"`
		Erased  bool          `json:"erased"`
		Orders  []exportOrder `json:"orders"`
	}
	exportOrder struct {
		OrderID   string          `json:"order_id"`
		State     string          `json:"state,omitempty"`
		Total     json.RawMessage `json:"total,omitempty"`
		Lines     json.RawMessage `json:"lines,omitempty"`
		PlaceTime string          `json:"place_time,omitempty"`
		Events    []exportEvent   `json:"events"`
	}
	exportEvent struct {
		Service    string           `json:"service"`
		Stream     string           `json:"stream"`
		Revision   uint64           `json:"revision"`
		EventID    string           `json:"event_id,omitempty"`
		Type       string           `json:"type"`
		RecordTime string           `json:"record_time"`
		Fields     []personal.Field `json:"fields,omitempty"`
		Error      string           `json:"error,omitempty"`
	}
)

// exportJSON renders an export: per order its state, total and lines as
// the order service shows them, and its events' personal fields by path.
func exportJSON(x app.Export) ([]byte, error) {
	doc := exportDoc{BuyerID: x.BuyerID, Erased: x.Erased, Orders: []exportOrder{}}
	pj := protojson.MarshalOptions{UseProtoNames: true}
	for _, o := range x.Orders {
		eo := exportOrder{OrderID: o.ID, Events: []exportEvent{}}
		if o.Order.Status != order.StatusNone {
			op := ordergrpc.OrderProto(o.Order, o.Revision)
			eo.State = op.GetState().String()
			if op.GetPlaceTime() != nil {
				eo.PlaceTime = op.GetPlaceTime().AsTime().Format(time.RFC3339Nano)
			}
			var err error
			if eo.Total, err = pj.Marshal(op.GetTotal()); err != nil {
				return nil, err
			}
			lines := make([]json.RawMessage, 0, len(op.GetLines()))
			for _, l := range op.GetLines() {
				b, err := pj.Marshal(l)
				if err != nil {
					return nil, err
				}
				lines = append(lines, b)
			}
			if eo.Lines, err = json.Marshal(lines); err != nil {
				return nil, err
			}
		}
		for _, e := range o.Events {
			eo.Events = append(eo.Events, exportEvent{Service: e.Service, Stream: e.Stream, Revision: e.Revision, EventID: e.EventID,
				Type: e.Type, RecordTime: e.RecordedAt.UTC().Format(time.RFC3339Nano), Fields: e.Fields, Error: e.Error})
		}
		doc.Orders = append(doc.Orders, eo)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// reveal returns m with its personal fields revealed for the caller.
func reveal[M proto.Message](ctx context.Context, svc *app.Service, m M) (M, error) {
	r, err := svc.Reveal(ctx, m)
	if err != nil {
		return m, err
	}
	return r.(M), nil
}
