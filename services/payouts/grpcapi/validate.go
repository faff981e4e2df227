package grpcapi

import (
	"time"

	"github.com/custody/custody/pkg/apierr"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/fault"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

func validateGetBalance(req *payoutsv1.GetBalanceRequest) (kind, id string, err error) {
	var v fault.Violations
	if req.GetOwner() == "" {
		v.Add("owner", "required: vendor:<id>, creator:<id>, platform, buyers or payouts")
	} else if kind, id, err = domain.ParseOwner(req.GetOwner()); err != nil {
		v.Add("owner", "%v", err)
	}
	return kind, id, v.Err()
}

func checkAccount(v *fault.Violations, account string, required bool) {
	switch {
	case account == "" && required:
		v.Add("account", "required, e.g. vendor:v1:available")
	case account != "":
		if _, err := domain.ParseAccount(account); err != nil {
			v.Add("account", "%v", err)
		}
	}
}

// checkStreamID checks an order or batch id, which are stream ids.
func checkStreamID(v *fault.Violations, field, id string, required bool) {
	if id != "" || required {
		apierr.Require(v, field, id, eventstore.ValidID(id), "1-128 letters, digits, '_' or '-'")
	}
}

func validateList(req *payoutsv1.ListLedgerEntriesRequest) (app.EntriesQuery, error) {
	var v fault.Violations
	checkAccount(&v, req.GetAccount(), false)
	checkStreamID(&v, "order_id", req.GetOrderId(), false)
	apierr.Paging(&v, req.GetPageSize(), req.GetPageToken())
	return app.EntriesQuery{Filter: app.EntryFilter{Account: req.GetAccount(), OrderID: req.GetOrderId()},
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}

func validateStatement(req *payoutsv1.GetStatementRequest) (start, end time.Time, err error) {
	var v fault.Violations
	checkAccount(&v, req.GetAccount(), true)
	start = apierr.Timestamp(&v, "start_time", req.GetStartTime())
	end = apierr.Timestamp(&v, "end_time", req.GetEndTime())
	if !start.IsZero() && !end.IsZero() && !start.Before(end) {
		v.Add("end_time", "must be after start_time")
	}
	return start, end, v.Err()
}

func validateRun(req *payoutsv1.RunPayoutsRequest) error {
	var v fault.Violations
	switch id := req.GetRequestId(); {
	case id == "":
		v.Add("request_id", "required: an idempotency key, unique per run")
	case len(id) > apierr.MaxRequestID:
		v.Add("request_id", "at most %d characters", apierr.MaxRequestID)
	}
	return v.Err()
}

func validateBatch(req *payoutsv1.GetPayoutBatchRequest) error {
	var v fault.Violations
	checkStreamID(&v, "batch_id", req.GetBatchId(), true)
	return v.Err()
}

func validateSettlement(req *payoutsv1.GetOrderSettlementRequest) error {
	var v fault.Violations
	checkStreamID(&v, "order_id", req.GetOrderId(), true)
	return v.Err()
}
