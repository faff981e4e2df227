package grpcapi

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/apierr/apierrtest"
	"github.com/custody/custody/pkg/auth/authtest"
	"github.com/custody/custody/pkg/fault"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/app"
	"github.com/custody/custody/services/audit/domain"
)

// The access table covers the service and says what authz.go does.
func TestAccess(t *testing.T) {
	if ServiceName != auditv1.AuditService_ServiceDesc.ServiceName {
		t.Errorf("ServiceName %q", ServiceName)
	}
	authtest.Check(t, access, &auditv1.AuditService_ServiceDesc,
		authtest.Case{RPC: "GetOrderTimeline", Owners: "buyer:b1", In: []string{"support"}, Out: []string{"buyer:b1", "vendor:v1", "service"}},
		authtest.Case{RPC: "ReplayOrder", Owners: "buyer:b1", In: []string{"platform", "buyer:b2 support"}, Out: []string{"buyer:b1"}},
		authtest.Case{RPC: "VerifyOrderChain", In: []string{"support"}, Out: []string{"buyer:b1"}},
		authtest.Case{RPC: "VerifyOrderChain", Owners: "buyer:b1", In: []string{"buyer:b1"},
			Out: []string{"buyer:b2", "vendor:v1", "creator:c1 carrier:k1", authtest.Nobody}},
		authtest.Case{RPC: "NoSuchRPC", Owners: "buyer:b1", Out: []string{"support"}},
	)
}

// A caller no order could be shown to is refused before any is looked
// up; a buyer verifying a chain is checked on the order.
func TestAdmit(t *testing.T) {
	for _, roles := range []string{"vendor:v1", "service", "creator:c1 carrier:k1"} {
		if _, err := admit(authtest.Context(t, "someone", strings.Fields(roles)...), "VerifyOrderChain", nil); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s verifying: %v", roles, err)
		}
	}
	buyer := authtest.Context(t, "ada", "buyer:b1")
	if _, err := admit(buyer, "GetOrderTimeline", nil); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a buyer reading a timeline: %v", err)
	}
	allow, err := admit(buyer, "VerifyOrderChain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if allow(app.OrderInfo{OrderID: "o1", BuyerID: "b1"}) != nil || status.Code(allow(app.OrderInfo{OrderID: "o2", BuyerID: "b2"})) != codes.PermissionDenied {
		t.Error("a buyer verifies its own orders only")
	}
	invalid := validateVerify(&auditv1.VerifyOrderChainRequest{})
	if _, err := admit(buyer, "GetOrderTimeline", invalid); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an invalid request is refused as such first: %v", err)
	}
}

func TestToStatus(t *testing.T) {
	s := New(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: badToken(), Code: codes.InvalidArgument},
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrIndexBehind), Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrUnrevealable), Code: codes.DataLoss},
	)
	fvs := apierr.FieldViolations(s.toStatus(t.Context(), badToken()))
	if len(fvs) != 1 || fvs[0].Field != "page_token" {
		t.Errorf("field violations %v", fvs)
	}
}

// badToken is the error app.Timeline returns for a page token it did not
// issue.
func badToken() error {
	var v fault.Violations
	v.Add("page_token", "%v", domain.ErrBadPageToken)
	return v.Err()
}

func TestValidate(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name  string
		err   error
		field string
	}{
		{"timeline without order", validateTimeline(&auditv1.GetOrderTimelineRequest{}), "order_id"},
		{"timeline, negative page size", validateTimeline(&auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: -1}), "page_size"},
		{"verify, bad order id", validateVerify(&auditv1.VerifyOrderChainRequest{OrderId: "o 1"}), "order_id"},
		{"verify, long order id", validateVerify(&auditv1.VerifyOrderChainRequest{OrderId: string(long)}), "order_id"},
		{"replay without order", validateReplay(&auditv1.ReplayOrderRequest{}), "order_id"},
		{"parked, bad consumer", validateParked(&auditv1.ListParkedEventsRequest{Consumer: "a.b"}), "consumer"},
	}
	for _, tt := range tests {
		if status.Code(tt.err) != codes.InvalidArgument {
			t.Errorf("%s: %v", tt.name, tt.err)
			continue
		}
		if fvs := apierr.FieldViolations(tt.err); len(fvs) != 1 || fvs[0].Field != tt.field {
			t.Errorf("%s: violations %v, want %s", tt.name, fvs, tt.field)
		}
	}
	if err := validateTimeline(&auditv1.GetOrderTimelineRequest{OrderId: "o1", PageSize: 5000}); err != nil {
		t.Errorf("a page size over the maximum is coerced, not refused: %v", err)
	}
	for _, consumer := range []string{"", "catalog-on-order"} {
		if err := validateParked(&auditv1.ListParkedEventsRequest{Consumer: consumer}); err != nil {
			t.Errorf("consumer %q refused: %v", consumer, err)
		}
	}
}

// The privacy table: erasure is the platform's alone; an export is the
// platform's or the buyer's own.
func TestPrivacyAccess(t *testing.T) {
	if PrivacyServiceName != auditv1.PrivacyService_ServiceDesc.ServiceName {
		t.Errorf("PrivacyServiceName %q", PrivacyServiceName)
	}
	authtest.Check(t, privacyAccess, &auditv1.PrivacyService_ServiceDesc,
		authtest.Case{RPC: "EraseBuyer", Owners: "buyer:b1", In: []string{"platform", "buyer:b1 platform"},
			Out: []string{"buyer:b1", "support", "service", "vendor:v1", authtest.Nobody}},
		authtest.Case{RPC: "ExportBuyerData", Owners: "buyer:b1", In: []string{"platform", "buyer:b1"},
			Out: []string{"buyer:b2", "support", "service", "vendor:v1", "creator:c1 carrier:k1", authtest.Nobody}},
	)
}

// A refused caller is refused before the buyer is looked up (the server
// has no app: a lookup would panic); an invalid request is refused as
// such first.
func TestPrivacyRefusals(t *testing.T) {
	s := NewPrivacy(nil, slog.New(slog.DiscardHandler))
	erase := &auditv1.EraseBuyerRequest{BuyerId: "b1", RequestId: "r1", Reason: "case 1"}
	for _, roles := range []string{"buyer:b1", "support", "service", "vendor:v1"} {
		ctx := authtest.Context(t, "someone", strings.Fields(roles)...)
		if _, err := s.EraseBuyer(ctx, erase); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s erasing: %v", roles, err)
		}
	}
	for _, roles := range []string{"buyer:b2", "support", "service"} {
		ctx := authtest.Context(t, "someone", strings.Fields(roles)...)
		if _, err := s.ExportBuyerData(ctx, &auditv1.ExportBuyerDataRequest{BuyerId: "b1"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s exporting b1: %v", roles, err)
		}
	}
	support := authtest.Context(t, "someone", "support")
	if _, err := s.EraseBuyer(support, &auditv1.EraseBuyerRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("an invalid request is refused as such first: %v", err)
	}
}

func TestValidatePrivacy(t *testing.T) {
	valid := func() *auditv1.EraseBuyerRequest {
		return &auditv1.EraseBuyerRequest{BuyerId: "b1", RequestId: "r1", Reason: "DPO case 2030-17"}
	}
	with := func(f func(*auditv1.EraseBuyerRequest)) *auditv1.EraseBuyerRequest { r := valid(); f(r); return r }
	tests := []struct {
		name   string
		err    error
		fields []string
	}{
		{"erase, empty", validateErase(&auditv1.EraseBuyerRequest{}), []string{"buyer_id", "request_id", "reason"}},
		{"erase, bad buyer id", validateErase(with(func(r *auditv1.EraseBuyerRequest) { r.BuyerId = "b 1" })), []string{"buyer_id"}},
		{"erase, long request id", validateErase(with(func(r *auditv1.EraseBuyerRequest) { r.RequestId = strings.Repeat("r", 129) })), []string{"request_id"}},
		{"erase, long reason", validateErase(with(func(r *auditv1.EraseBuyerRequest) { r.Reason = strings.Repeat("é", 501) })), []string{"reason"}},
		{"export without buyer", validateExport(&auditv1.ExportBuyerDataRequest{}), []string{"buyer_id"}},
		{"export, bad buyer id", validateExport(&auditv1.ExportBuyerDataRequest{BuyerId: "b/1"}), []string{"buyer_id"}},
	}
	for _, tt := range tests {
		err := apierr.FromError(t.Context(), slog.New(slog.DiscardHandler), tt.err)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", tt.name, tt.err)
			continue
		}
		var got []string
		for _, fv := range apierr.FieldViolations(err) {
			got = append(got, fv.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
			t.Errorf("%s: violations %v, want %v", tt.name, got, tt.fields)
		}
	}
	if err := validateErase(with(func(r *auditv1.EraseBuyerRequest) { r.Reason = strings.Repeat("é", 500) })); err != nil {
		t.Errorf("a reason of 500 characters (1000 bytes) is refused: %v", err)
	}
	if err := validateExport(&auditv1.ExportBuyerDataRequest{BuyerId: "b1"}); err != nil {
		t.Errorf("a valid export refused: %v", err)
	}
}

func TestPrivacyToStatus(t *testing.T) {
	s := NewPrivacy(nil, slog.New(slog.DiscardHandler))
	apierrtest.ToStatus(t, s.toStatus,
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrPrivacyUnavailable), Code: codes.Unavailable},
		apierrtest.Case{Err: fmt.Errorf("x: %w", app.ErrIndexBehind), Code: codes.Unavailable},
	)
}
