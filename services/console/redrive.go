package console

import (
	"net/http"
	"strconv"
	"strings"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
)

// redrive hands a parked event back to its consumer
// (AuditService.RedriveParkedEvent) as support asked on the parked page.
// The request is built from the form alone (the dead-letter record, the
// consumer and the request_id it was rendered with, the reason), so a form
// sent twice is the same request twice: the audit service answers the
// second with the first's result and hands the event back once.
func (c *Console) redrive(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.refuse(w, r, s, "No such parked event: "+r.PathValue("seq")+". Nothing was changed.")
		return
	}
	req := &auditv1.RedriveParkedEventRequest{RequestId: f.Get("request_id"), DeadLetterSequence: seq,
		Consumer: f.Get("consumer"), Reason: strings.TrimSpace(f.Get("reason"))}
	if req.RequestId == "" {
		c.refuse(w, r, s, "The form carries no request_id; reload the page and redrive again.")
		return
	}
	if req.Reason == "" {
		c.refuse(w, r, s, "Say why (the reason is recorded in the audit trail). Nothing was changed.")
		return
	}
	if _, err := c.cfg.Clients.Audit.RedriveParkedEvent(withToken(r.Context(), s.Token), req); err != nil {
		c.fail(w, r, s, "Redriving parked event #"+r.PathValue("seq"), err)
		return
	}
	http.Redirect(w, r, "/parked?redriven="+strconv.FormatUint(seq, 10)+"#p"+strconv.FormatUint(seq, 10), http.StatusSeeOther)
}

// redriveOutcome says what became of a redrive, in a word.
func redriveOutcome(r *auditv1.ParkedEventRedrive) string {
	switch r.GetOutcome() {
	case auditv1.RedriveOutcome_REDRIVE_OUTCOME_HANDLED:
		return "handled"
	case auditv1.RedriveOutcome_REDRIVE_OUTCOME_PARKED_AGAIN:
		return "parked again"
	}
	return "pending"
}
