package console

import (
	"html/template"
	"strings"
	"unicode"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custody/custody/pkg/money"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
	typev1 "github.com/custody/custody/proto/custody/type/v1"
)

// funcs are the templates' helpers. None returns template.HTML: every
// value from the services is escaped by html/template.
var funcs = template.FuncMap{
	"money":          formatMoney,
	"moneyInput":     moneyInput,
	"time":           formatTime,
	"enum":           enumName,
	"short":          short,
	"shortType":      shortType,
	"requestID":      newRequestID,
	"redriveOutcome": redriveOutcome,
	"serviceOf":      serviceOf,
	"join":           strings.Join,
	"add":            func(a, b int) int { return a + b },
	"decideForm":     decideForm,
	"escalated":      isEscalated,
	"scanAxis":       scanAxis,
	"moneyOf":        moneyOf,
}

func formatMoney(m *typev1.Money) string {
	if m == nil {
		return "—"
	}
	return money.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}.String()
}

// moneyInput is m in major units without its currency ("25.00"), as the
// decision form's amount field takes it.
func moneyInput(m *typev1.Money) string {
	if m == nil {
		return ""
	}
	s := formatMoney(m)
	return strings.TrimSuffix(s, " "+m.GetCurrencyCode())
}

// enumName is an enum value as people read it: ORDER_STATE_CONFIRMED of
// OrderState is "confirmed".
func enumName(e protoreflect.Enum) string {
	d := e.Descriptor()
	v := d.Values().ByNumber(e.Number())
	if v == nil {
		return "unknown"
	}
	name := strings.TrimPrefix(string(v.Name()), screaming(string(d.Name()))+"_")
	return strings.ReplaceAll(strings.ToLower(name), "_", " ")
}

// screaming is a CamelCase name in SCREAMING_SNAKE case.
func screaming(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// shortType is an event type without its package: "OrderPlaced".
func shortType(t string) string { return t[strings.LastIndex(t, ".")+1:] }

// serviceOf names the service of a proto full name: "custody.order.v1.X"
// is "order".
func serviceOf(t string) string {
	parts := strings.Split(t, ".")
	if len(parts) > 2 {
		return parts[1]
	}
	return ""
}

// decideView is what the decision form of a claim needs.
type decideView struct {
	ClaimID, CSRF, Back string
	ApproveID, RejectID string // each form's request_id
	Left                *typev1.Money
	Counterfeit         bool // the claim is about a counterfeit
}

func decideForm(cm *trustv1.Claim, csrf, back string) decideView {
	return decideView{ClaimID: cm.GetClaimId(), CSRF: csrf, Back: back, ApproveID: newRequestID(), RejectID: newRequestID(), Left: left(cm),
		Counterfeit: cm.GetReason() == trustv1.ClaimReason_CLAIM_REASON_COUNTERFEIT}
}

func isEscalated(cm *trustv1.Claim) bool {
	return cm.GetState() == trustv1.ClaimState_CLAIM_STATE_ESCALATED
}
