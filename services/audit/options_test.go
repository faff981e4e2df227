package audit_test

import (
	"testing"
	"time"

	"github.com/custody/custody/services/audit"
)

func TestDefaultOptions(t *testing.T) {
	t.Setenv(audit.EnvFreshnessWait, "")
	o, err := audit.DefaultOptions()
	if err != nil || o.FreshnessWait != 2*time.Second || o.StartTimeout != 5*time.Minute {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	t.Setenv(audit.EnvFreshnessWait, "750ms")
	if o, err = audit.DefaultOptions(); err != nil || o.FreshnessWait != 750*time.Millisecond {
		t.Fatalf("from the environment: %+v, %v", o, err)
	}
	for _, bad := range []string{"soon", "-1s", "0s"} {
		t.Setenv(audit.EnvFreshnessWait, bad)
		if _, err := audit.DefaultOptions(); err == nil {
			t.Errorf("%s=%q accepted", audit.EnvFreshnessWait, bad)
		}
	}
	t.Setenv(audit.EnvFreshnessWait, "")
	if m := audit.Module(); m.Name != "audit" || audit.ServiceName != "custody.audit.v1.AuditService" {
		t.Errorf("module %q, service %q", m.Name, audit.ServiceName)
	}
}
