package auth_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/auth/authtest"
)

var table = auth.Access{
	"Browse":  auth.Open,
	"Ship":    auth.Allow(auth.Vendor, auth.Service),
	"See":     auth.Allow(auth.Buyer, auth.Vendor, auth.Support, auth.Platform),
	"Decide":  auth.Allow(auth.Support),
	"Nothing": auth.Allow(),
}

func TestAccess(t *testing.T) {
	t.Parallel()
	buyer := auth.Role{Kind: auth.Buyer, ID: "b1"}
	vendor := auth.Role{Kind: auth.Vendor, ID: "v1"}
	tests := []struct {
		roles  []string
		rpc    string
		owners []auth.Role
		want   bool // Allows
		all    bool // AllowsAll
		may    bool // MayCall
	}{
		{[]string{"buyer:b1"}, "Browse", nil, true, true, true},
		{nil, "Browse", nil, true, true, true},
		{[]string{"vendor:v1"}, "Ship", []auth.Role{vendor}, true, false, true},
		{[]string{"vendor:v2"}, "Ship", []auth.Role{vendor}, false, false, true},
		{[]string{"vendor:v2", "vendor:v1"}, "Ship", []auth.Role{vendor}, true, false, true},
		{[]string{"buyer:v1"}, "Ship", []auth.Role{vendor}, false, false, false}, // same id, other kind
		{[]string{"service"}, "Ship", nil, true, true, true},
		{[]string{"support"}, "Ship", []auth.Role{vendor}, false, false, false},
		{[]string{"buyer:b1"}, "Ship", []auth.Role{buyer}, false, false, false}, // an owner the rule does not name
		{[]string{"vendor:v1"}, "See", []auth.Role{buyer, {Kind: auth.Vendor, ID: "v2"}, vendor}, true, false, true},
		{[]string{"buyer:b1"}, "See", []auth.Role{{Kind: auth.Buyer}}, false, false, true}, // no id owns nothing
		{[]string{"platform"}, "See", []auth.Role{buyer}, true, true, true},
		{[]string{"platform"}, "Decide", nil, false, false, false},
		{[]string{"creator:c1", "carrier:k1"}, "See", []auth.Role{buyer, vendor}, false, false, false},
		{[]string{"support"}, "Nothing", nil, false, false, false},
		{[]string{"support"}, "NoSuchRPC", nil, false, false, false},
	}
	for _, tt := range tests {
		c := auth.Caller{}
		if tt.roles != nil {
			c = authtest.Caller(t, "alice", tt.roles...)
		}
		if got := table.Allows(c, tt.rpc, tt.owners...); got != tt.want {
			t.Errorf("Allows(%v, %s, %v) = %v, want %v", tt.roles, tt.rpc, tt.owners, got, tt.want)
		}
		if got := table.AllowsAll(c, tt.rpc); got != tt.all {
			t.Errorf("AllowsAll(%v, %s) = %v, want %v", tt.roles, tt.rpc, got, tt.all)
		}
		if got := table.MayCall(c, tt.rpc); got != tt.may {
			t.Errorf("MayCall(%v, %s) = %v, want %v", tt.roles, tt.rpc, got, tt.may)
		}
	}
	if k := table["See"].Kinds(); len(k) != 4 || k[0] != auth.Buyer || k[3] != auth.Platform {
		t.Errorf("Kinds = %v", k)
	}
	if r := strings.Join(table["See"].Roles("x1"), ", "); r != "buyer:x1, vendor:x1, support, platform" {
		t.Errorf("Roles = %s", r)
	}
}

func TestAccessCovers(t *testing.T) {
	t.Parallel()
	desc := &grpc.ServiceDesc{ServiceName: "x.v1.X",
		Methods: []grpc.MethodDesc{{MethodName: "Browse"}, {MethodName: "Ship"}, {MethodName: "See"}, {MethodName: "Decide"}},
		Streams: []grpc.StreamDesc{{StreamName: "Nothing"}},
	}
	if err := table.Covers(desc); err != nil {
		t.Fatalf("Covers: %v", err)
	}
	authtest.Check(t, table, desc,
		authtest.Case{RPC: "Browse", In: []string{"buyer:b1", authtest.Nobody}},
		authtest.Case{RPC: "See", Owners: "buyer:b1 vendor:v1", In: []string{"buyer:b2 vendor:v1", "platform"}, Out: []string{"vendor:b1", "creator:c1 carrier:k1"}},
		authtest.Case{RPC: "Nothing", Out: []string{"support", authtest.Nobody}},
	)
	desc.Methods = append(desc.Methods[1:], grpc.MethodDesc{MethodName: "Forgotten"})
	err := table.Covers(desc)
	if err == nil || !strings.Contains(err.Error(), "x.v1.X.Forgotten has no row") || !strings.Contains(err.Error(), "names Browse, which x.v1.X does not have") {
		t.Fatalf("Covers = %v", err)
	}
}

func TestActor(t *testing.T) {
	t.Parallel()
	unscoped := []auth.Kind{auth.Service, auth.Support, auth.Platform}
	buyer, vendor := auth.Role{Kind: auth.Buyer, ID: "b1"}, auth.Role{Kind: auth.Vendor, ID: "v1"}
	tests := []struct {
		c      auth.Caller
		owners []auth.Role
		want   string
	}{
		{authtest.Caller(t, "ada", "buyer:b1"), []auth.Role{buyer}, "buyer:b1"},
		{authtest.Caller(t, "ada", "buyer:b1", "vendor:v1"), []auth.Role{vendor, buyer}, "vendor:v1"},
		{authtest.Caller(t, "ada", "buyer:b2", "support"), []auth.Role{buyer}, "support:ada"},
		{authtest.Caller(t, "checkout", "support", "service"), nil, "service:checkout"},
		{authtest.Caller(t, "support", "support"), nil, "support"},
		{authtest.Caller(t, "", "platform"), nil, "platform"},
		{authtest.Caller(t, "ada", "creator:c1", "buyer:b2"), []auth.Role{buyer, {Kind: auth.Creator}}, "creator:c1"},
		{auth.Caller{Subject: "ada"}, nil, "ada"},
	}
	for _, tt := range tests {
		if got := auth.Actor(tt.c, unscoped, tt.owners...); got != tt.want {
			t.Errorf("Actor(%v, %v) = %q, want %q", tt.c, tt.owners, got, tt.want)
		}
	}
}
