package apierr_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/fault"
	"github.com/custody/custody/pkg/protoconv"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

type wireState int32

func (s wireState) String() string { return "STATE_" + strconv.Itoa(int(s)) } // as generated enums have

var states = protoconv.NewEnum(map[string]wireState{"": 0, "open": 1, "closed": 2})

var decisions = protoconv.NewEnum(map[string]trustv1.ClaimDecision{
	"":       trustv1.ClaimDecision_CLAIM_DECISION_UNSPECIFIED,
	"full":   trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL,
	"reject": trustv1.ClaimDecision_CLAIM_DECISION_REJECT,
})

func TestFieldChecks(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	bad := &timestamppb.Timestamp{Nanos: -1}
	// What a required enum field takes comes from the proto enum.
	decision := []fault.Violation{{Field: "decision", Description: "required: REFUND_FULL, REFUND_PARTIAL, RETURN_THEN_REFUND or REJECT"}}
	tests := []struct {
		name  string
		check func(v *fault.Violations)
		want  []fault.Violation
	}{
		{"request id", func(v *fault.Violations) { apierr.RequestID(v, "r1") }, nil},
		{"request id missing", func(v *fault.Violations) { apierr.RequestID(v, "") },
			[]fault.Violation{{Field: "request_id", Description: "required: an idempotency key, unique per request"}}},
		{"request id too long", func(v *fault.Violations) { apierr.RequestID(v, strings.Repeat("r", 129)) },
			[]fault.Violation{{Field: "request_id", Description: "at most 128 characters"}}},
		{"request id at the limit", func(v *fault.Violations) { apierr.RequestID(v, strings.Repeat("r", 128)) }, nil},
		{"required", func(v *fault.Violations) { apierr.Require(v, "order_id", "o1", true, "not an order id") }, nil},
		{"required missing", func(v *fault.Violations) { apierr.Require(v, "order_id", "", false, "not an order id") },
			[]fault.Violation{{Field: "order_id", Description: "required"}}},
		{"required malformed", func(v *fault.Violations) { apierr.Require(v, "order_id", "o 1", false, "not an order id: 100% wrong") },
			[]fault.Violation{{Field: "order_id", Description: "not an order id: 100% wrong"}}},
		{"paging", func(v *fault.Violations) { apierr.Paging(v, 0, strings.Repeat("t", 1024)) }, nil},
		{"paging out of range", func(v *fault.Violations) { apierr.Paging(v, -1, strings.Repeat("t", 1025)) },
			[]fault.Violation{{Field: "page_size", Description: "must not be negative"}, {Field: "page_token", Description: "not a page token of this service"}}},
		{"known", func(v *fault.Violations) {
			if got := apierr.Known(v, "state", states, wireState(2)); got != "closed" {
				t.Errorf("Known = %q", got)
			}
		}, nil},
		{"unknown", func(v *fault.Violations) { apierr.Known(v, "state", states, wireState(9)) },
			[]fault.Violation{{Field: "state", Description: "unknown state 9"}}},
		{"one of", func(v *fault.Violations) {
			if !apierr.OneOf(v, "decision", trustv1.ClaimDecision_CLAIM_DECISION_REJECT) {
				t.Error("REJECT is not one of the decisions")
			}
		}, nil},
		{"one of, unspecified", func(v *fault.Violations) {
			apierr.OneOf(v, "decision", trustv1.ClaimDecision_CLAIM_DECISION_UNSPECIFIED)
		}, decision},
		{"one of, undefined", func(v *fault.Violations) { apierr.OneOf(v, "decision", trustv1.ClaimDecision(9)) }, decision},
		{"one of known", func(v *fault.Violations) {
			if got := apierr.OneOfKnown(v, "decision", decisions, trustv1.ClaimDecision_CLAIM_DECISION_REFUND_FULL); got != "full" {
				t.Errorf("OneOfKnown = %q", got)
			}
		}, nil},
		{"one of known, unspecified", func(v *fault.Violations) {
			apierr.OneOfKnown(v, "decision", decisions, trustv1.ClaimDecision_CLAIM_DECISION_UNSPECIFIED)
		}, decision},
		{"one of known, not mapped", func(v *fault.Violations) {
			apierr.OneOfKnown(v, "decision", decisions, trustv1.ClaimDecision_CLAIM_DECISION_REFUND_PARTIAL)
		}, decision},
		{"timestamp unset", func(v *fault.Violations) {
			if got := apierr.Timestamp(v, "as_of", nil); !got.IsZero() {
				t.Errorf("unset timestamp = %v", got)
			}
		}, nil},
		{"timestamp", func(v *fault.Violations) {
			if got := apierr.Timestamp(v, "as_of", timestamppb.New(at)); !got.Equal(at) {
				t.Errorf("timestamp = %v, want %v", got, at)
			}
		}, nil},
		{"timestamp invalid", func(v *fault.Violations) {
			if got := apierr.Timestamp(v, "as_of", bad); !got.IsZero() {
				t.Errorf("invalid timestamp = %v", got)
			}
		}, []fault.Violation{{Field: "as_of", Description: bad.CheckValid().Error()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v fault.Violations
			tt.check(&v)
			if !slices.Equal(v, tt.want) {
				t.Fatalf("violations %v, want %v", v, tt.want)
			}
		})
	}
}
