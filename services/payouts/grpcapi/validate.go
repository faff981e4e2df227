package grpcapi

import (
	"regexp"
	"time"

	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	"github.com/custody/custody/services/payouts/app"
	"github.com/custody/custody/services/payouts/domain"
)

var (
	// streamIDPattern: order ids and batch ids are stream ids (pkg/eventstore).
	streamIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

const (
	maxRequestID = 128
	maxPageToken = 1024
)

func validateGetBalance(req *payoutsv1.GetBalanceRequest) (kind, id string, err error) {
	var v domain.Violations
	if req.GetOwner() == "" {
		v.Add("owner", "required: vendor:<id>, creator:<id>, platform, buyers or payouts")
	} else if kind, id, err = domain.ParseOwner(req.GetOwner()); err != nil {
		v.Add("owner", "%v", err)
	}
	return kind, id, v.Err()
}

func checkAccount(v *domain.Violations, account string, required bool) {
	switch {
	case account == "" && required:
		v.Add("account", "required, e.g. vendor:v1:available")
	case account != "":
		if _, err := domain.ParseAccount(account); err != nil {
			v.Add("account", "%v", err)
		}
	}
}

func checkStreamID(v *domain.Violations, field, id string, required bool) {
	switch {
	case id == "" && required:
		v.Add(field, "required")
	case id != "" && !streamIDPattern.MatchString(id):
		v.Add(field, "1-128 letters, digits, '_' or '-'")
	}
}

func validateList(req *payoutsv1.ListLedgerEntriesRequest) (app.EntriesQuery, error) {
	var v domain.Violations
	checkAccount(&v, req.GetAccount(), false)
	checkStreamID(&v, "order_id", req.GetOrderId(), false)
	if req.GetPageSize() < 0 {
		v.Add("page_size", "must not be negative")
	}
	if len(req.GetPageToken()) > maxPageToken {
		v.Add("page_token", "not a page token of this service")
	}
	return app.EntriesQuery{Filter: app.EntryFilter{Account: req.GetAccount(), OrderID: req.GetOrderId()},
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}, v.Err()
}

func validateStatement(req *payoutsv1.GetStatementRequest) (start, end time.Time, err error) {
	var v domain.Violations
	checkAccount(&v, req.GetAccount(), true)
	if ts := req.GetStartTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.Add("start_time", "%v", err)
		} else {
			start = ts.AsTime()
		}
	}
	if ts := req.GetEndTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.Add("end_time", "%v", err)
		} else {
			end = ts.AsTime()
		}
	}
	if !start.IsZero() && !end.IsZero() && !start.Before(end) {
		v.Add("end_time", "must be after start_time")
	}
	return start, end, v.Err()
}

func validateRun(req *payoutsv1.RunPayoutsRequest) error {
	var v domain.Violations
	switch id := req.GetRequestId(); {
	case id == "":
		v.Add("request_id", "required: an idempotency key, unique per run")
	case len(id) > maxRequestID:
		v.Add("request_id", "at most %d characters", maxRequestID)
	}
	return v.Err()
}

func validateBatch(req *payoutsv1.GetPayoutBatchRequest) error {
	var v domain.Violations
	checkStreamID(&v, "batch_id", req.GetBatchId(), true)
	return v.Err()
}

func validateSettlement(req *payoutsv1.GetOrderSettlementRequest) error {
	var v domain.Violations
	checkStreamID(&v, "order_id", req.GetOrderId(), true)
	return v.Err()
}
