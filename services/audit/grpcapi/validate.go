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

// maxRedriveReason bounds a redrive's reason.
const maxRedriveReason = 1000

func validateRedrive(req *auditv1.RedriveParkedEventRequest) error {
	var v apierr.Violations
	switch id := req.GetRequestId(); {
	case id == "":
		v.Add("request_id", "required: an idempotency key, unique per request")
	case len(id) > apierr.MaxRequestID:
		v.Addf("request_id", "at most %d characters", apierr.MaxRequestID)
	}
	c, ev, seq := req.GetConsumer(), req.GetEventId(), req.GetDeadLetterSequence()
	if c != "" && !consumerPattern.MatchString(c) {
		v.Add("consumer", "not a consumer name: 1-64 letters, digits, '_' or '-'")
	}
	if len(ev) > 256 {
		v.Add("event_id", "at most 256 characters")
	}
	if seq == 0 {
		if ev == "" {
			v.Add("event_id", "required unless dead_letter_sequence names the parked event")
		}
		if c == "" {
			v.Add("consumer", "required with event_id (the consumer that parked it)")
		}
	}
	switch r := req.GetReason(); {
	case r == "":
		v.Add("reason", "required: why the event is handed back (recorded in the audit trail)")
	case len(r) > maxRedriveReason:
		v.Addf("reason", "at most %d characters", maxRedriveReason)
	}
	return v.Err()
}
