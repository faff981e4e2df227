package apierr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
)

func TestConstructors(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		code        codes.Code
		msgContains []string
		details     []proto.Message
	}{
		{
			name: "invalid argument",
			err: apierr.InvalidArgument(
				apierr.FieldViolation{Field: "buyer_id", Description: "required"},
				apierr.FieldViolation{Field: "lines[0].quantity", Description: "must be > 0"},
			),
			code:        codes.InvalidArgument,
			msgContains: []string{"buyer_id: required", "lines[0].quantity: must be > 0"},
			details: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "buyer_id", Description: "required"},
				{Field: "lines[0].quantity", Description: "must be > 0"},
			}}},
		},
		{
			name:        "failed precondition",
			err:         apierr.FailedPrecondition("ORDER_CANCELLED", "order o-1 is cancelled"),
			code:        codes.FailedPrecondition,
			msgContains: []string{"order o-1 is cancelled"},
			details: []proto.Message{
				&errdetails.ErrorInfo{Reason: "ORDER_CANCELLED", Domain: apierr.Domain},
				&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
					{Type: "ORDER_CANCELLED", Description: "order o-1 is cancelled"},
				}},
			},
		},
		{
			name:        "not found",
			err:         apierr.NotFound("order", "o-404"),
			code:        codes.NotFound,
			msgContains: []string{`order "o-404" not found`},
			details:     []proto.Message{&errdetails.ResourceInfo{ResourceType: "order", ResourceName: "o-404", Description: "not found"}},
		},
		{
			name:        "already exists",
			err:         apierr.AlreadyExists("vendor", "v-1"),
			code:        codes.AlreadyExists,
			msgContains: []string{`vendor "v-1" already exists`},
			details:     []proto.Message{&errdetails.ResourceInfo{ResourceType: "vendor", ResourceName: "v-1", Description: "already exists"}},
		},
		{
			name:        "permission denied",
			err:         apierr.PermissionDenied("vendor v-2 cannot ship fulfilment f-1"),
			code:        codes.PermissionDenied,
			msgContains: []string{"cannot ship"},
			details:     []proto.Message{&errdetails.ErrorInfo{Reason: "PERMISSION_DENIED", Domain: apierr.Domain}},
		},
		{
			name:        "aborted",
			err:         apierr.Aborted("concurrent update of order o-1"),
			code:        codes.Aborted,
			msgContains: []string{"concurrent update"},
			details:     []proto.Message{&errdetails.ErrorInfo{Reason: "CONCURRENCY_CONFLICT", Domain: apierr.Domain}},
		},
		{
			name:        "unavailable",
			err:         apierr.Unavailable("event store unavailable"),
			code:        codes.Unavailable,
			msgContains: []string{"event store unavailable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Round-trip through the wire form, as a client would see it.
			st := roundTrip(t, tt.err)
			if st.Code() != tt.code {
				t.Fatalf("code = %v, want %v", st.Code(), tt.code)
			}
			for _, s := range tt.msgContains {
				if !strings.Contains(st.Message(), s) {
					t.Errorf("message %q does not contain %q", st.Message(), s)
				}
			}
			got := st.Details()
			if len(got) != len(tt.details) {
				t.Fatalf("got %d details, want %d: %v", len(got), len(tt.details), got)
			}
			for i, want := range tt.details {
				d, ok := got[i].(proto.Message)
				if !ok || !proto.Equal(d, want) {
					t.Errorf("detail %d = %v, want %v", i, got[i], want)
				}
			}
		})
	}
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		add  func(v *apierr.Violations)
		want []apierr.FieldViolation
	}{
		{name: "none", add: func(*apierr.Violations) {}},
		{
			name: "two",
			add: func(v *apierr.Violations) {
				v.Add("lines[0].quantity", "must be > 0")
				v.Addf("lines[1].sku_id", "unknown SKU %q", "sku-9")
			},
			want: []apierr.FieldViolation{
				{Field: "lines[0].quantity", Description: "must be > 0"},
				{Field: "lines[1].sku_id", Description: `unknown SKU "sku-9"`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v apierr.Violations
			tt.add(&v)
			err := v.Err()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", status.Code(err))
			}
			// Wrapping at a layer boundary must not lose the details.
			wrapped := fmt.Errorf("place order: %w", roundTrip(t, err).Err())
			if got := apierr.FieldViolations(wrapped); !slices.Equal(got, tt.want) {
				t.Fatalf("FieldViolations = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{apierr.FailedPrecondition("ORDER_CANCELLED", "x"), "ORDER_CANCELLED"},
		{fmt.Errorf("wrapped: %w", apierr.Aborted("x")), "CONCURRENCY_CONFLICT"},
		{apierr.NotFound("order", "o"), ""},
		{fmt.Errorf("plain"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := apierr.Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// roundTrip marshals the status to its wire proto and back.
func roundTrip(t *testing.T, err error) *status.Status {
	t.Helper()
	b, mErr := proto.Marshal(status.Convert(err).Proto())
	if mErr != nil {
		t.Fatal(mErr)
	}
	var pb spb.Status
	if err := proto.Unmarshal(b, &pb); err != nil {
		t.Fatal(err)
	}
	return status.FromProto(&pb)
}

func TestFromError(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var v fault.Violations
	v.Add("buyer_id", "required")
	for _, tc := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{nil, codes.OK, ""},
		{v.Err(), codes.InvalidArgument, ""},
		{fmt.Errorf("place: %w", fault.Precondition("ORDER_SHIPPED", "order o1 has shipped")), codes.FailedPrecondition, "ORDER_SHIPPED"},
		{&fault.NotFoundError{Resource: "order", ID: "o1"}, codes.NotFound, ""},
		{&fault.ExistsError{Resource: "product", ID: "p1"}, codes.AlreadyExists, ""},
		{fmt.Errorf("append: %w", es.ErrConflict), codes.Aborted, "CONCURRENCY_CONFLICT"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{context.Canceled, codes.Canceled, ""},
		{eventstore.ErrUnavailable, codes.Unavailable, ""},
		{apierr.PermissionDenied("no"), codes.PermissionDenied, "PERMISSION_DENIED"},
		{errors.New("something unforeseen"), codes.Internal, ""},
	} {
		err := apierr.FromError(t.Context(), log, tc.err)
		if got := status.Code(err); got != tc.code {
			t.Errorf("FromError(%v) = %v, want %v", tc.err, got, tc.code)
		}
		if got := apierr.Reason(err); got != tc.reason {
			t.Errorf("FromError(%v) reason %q, want %q", tc.err, got, tc.reason)
		}
	}
	err := apierr.FromError(t.Context(), log, v.Err())
	if fv := apierr.FieldViolations(err); len(fv) != 1 || fv[0].Field != "buyer_id" {
		t.Errorf("violations %v, want buyer_id", fv)
	}
	if msg := status.Convert(apierr.FromError(t.Context(), log, errors.New("secret detail"))).Message(); strings.Contains(msg, "secret") {
		t.Errorf("Internal leaks the error text: %q", msg)
	}
}
