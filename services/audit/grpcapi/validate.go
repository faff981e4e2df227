package grpcapi

import (
	"regexp"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/eventstore"
	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	"github.com/custody/custody/services/audit/domain"
)

// checkOrderID checks an order id, which is a stream id.
func checkOrderID(v *apierr.Violations, id string) {
	switch {
	case id == "":
		v.Add("order_id", "required")
	case !eventstore.ValidID(id):
		v.Add("order_id", "not an order id: 1-128 letters, digits, '_' or '-'")
	}
}

// consumerPattern: durable consumer names (pkg/bus).
var consumerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validateParked(req *auditv1.ListParkedEventsRequest) error {
	var v apierr.Violations
	if c := req.GetConsumer(); c != "" && !consumerPattern.MatchString(c) {
		v.Add("consumer", "not a consumer name: 1-64 letters, digits, '_' or '-'")
	}
	return v.Err()
}

func validateTimeline(req *auditv1.GetOrderTimelineRequest) error {
	var v apierr.Violations
	checkOrderID(&v, req.GetOrderId())
	if req.GetPageSize() < 0 {
		v.Addf("page_size", "must not be negative, got %d (0 means %d, at most %d)", req.GetPageSize(), domain.DefaultPageSize, domain.MaxPageSize)
	}
	return v.Err()
}

func validateVerify(req *auditv1.VerifyOrderChainRequest) error {
	var v apierr.Violations
	checkOrderID(&v, req.GetOrderId())
	return v.Err()
}

func validateReplay(req *auditv1.ReplayOrderRequest) error {
	var v apierr.Violations
	checkOrderID(&v, req.GetOrderId())
	if t := req.GetAsOf(); t != nil {
		if err := t.CheckValid(); err != nil {
			v.Addf("as_of", "not a valid timestamp: %v", err)
		}
	}
	return v.Err()
}
