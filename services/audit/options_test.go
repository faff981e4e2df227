package audit_test

import (
	"testing"
	"time"

	"github.com/custody/custody/pkg/platform/platformtest"
	"github.com/custody/custody/services/audit"
)

func TestOptionsFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (audit.Options, error) {
		return platformtest.ParseOptions(audit.DefaultOptions(), nil, args...)
	}
	if o, err := parse(); err != nil || o.FreshnessWait != 2*time.Second {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if o, err := parse("--audit-freshness-wait=750ms"); err != nil || o.FreshnessWait != 750*time.Millisecond {
		t.Fatalf("from the flag: %+v, %v", o, err)
	}
	for _, bad := range []string{"soon", "-1s", "0s"} {
		if _, err := parse("--audit-freshness-wait=" + bad); err == nil {
			t.Errorf("--audit-freshness-wait=%q accepted", bad)
		}
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	if m := audit.Module(); m.Name != "audit" || m.RegisterFlags == nil || audit.ServiceName != "custody.audit.v1.AuditService" {
		t.Errorf("module %q (flags %v), service %q", m.Name, m.RegisterFlags != nil, audit.ServiceName)
	}
	if m := audit.NewModule(audit.Options{}); m.Name != "audit" || m.RegisterFlags != nil {
		t.Errorf("explicit options: module %q registers flags %v", m.Name, m.RegisterFlags != nil)
	}
}
