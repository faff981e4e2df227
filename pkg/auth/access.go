package auth

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc"
)

// Rule says who may call one RPC (docs/design.md §5, "Roles and access"):
// a scoped kind (buyer, vendor, creator, carrier) on the resources it owns,
// an unscoped kind (support, platform, service) on every resource; an open
// rule lets every authenticated caller in.
type Rule struct {
	kinds []Kind
	open  bool
}

// Allow is the rule that lets kinds call an RPC. List the scoped kinds
// first: services name them in that order when they say who may call.
func Allow(kinds ...Kind) Rule { return Rule{kinds: kinds} }

// Open is the rule of an RPC every authenticated caller may call.
var Open = Rule{open: true}

// Kinds returns the kinds the rule names, in the order given to Allow.
func (r Rule) Kinds() []Kind { return slices.Clone(r.kinds) }

// Roles names the roles the rule lets in, as a denial tells the caller:
// a scoped kind with id ("vendor:v1", or a placeholder such as
// "vendor:<its own id>"), an unscoped kind as itself.
func (r Rule) Roles(id string) []string {
	roles := make([]string, 0, len(r.kinds))
	for _, k := range r.kinds {
		if k.Scoped() {
			roles = append(roles, string(k)+":"+id)
		} else {
			roles = append(roles, string(k))
		}
	}
	return roles
}

// Access is a service's access table: the rule of each RPC, by method name.
// Each service keeps its own table (its rows are its policy); an RPC
// missing from it is open to no one.
type Access map[string]Rule

// Allows reports whether c may call rpc on a resource owned by owners:
// the RPC is open, c holds one of its unscoped kinds, or c is one of
// owners whose scoped kind the rule names. An owner without an ID owns
// nothing (a resource with no buyer matches no buyer).
func (a Access) Allows(c Caller, rpc string, owners ...Role) bool {
	r, ok := a[rpc]
	if !ok {
		return false
	}
	if a.AllowsAll(c, rpc) {
		return true
	}
	return slices.ContainsFunc(owners, func(o Role) bool {
		return o.ID != "" && slices.Contains(r.kinds, o.Kind) && c.Is(o.Kind, o.ID)
	})
}

// AllowsAll reports whether c may call rpc on every resource: the RPC is
// open or c holds one of its unscoped kinds.
func (a Access) AllowsAll(c Caller, rpc string) bool {
	r := a[rpc]
	return r.open || slices.ContainsFunc(r.kinds, func(k Kind) bool { return !k.Scoped() && c.Has(k) })
}

// MayCall reports whether c holds a role rpc could be allowed to on some
// resource, before it is known whose the resource is: a service refuses
// everyone else without looking the resource up.
func (a Access) MayCall(c Caller, rpc string) bool {
	r, ok := a[rpc]
	return ok && (r.open || slices.ContainsFunc(r.kinds, c.Has))
}

// Covers checks that the table has a row for every RPC of desc, unary or
// streaming, and none for an RPC desc does not have.
func (a Access) Covers(desc *grpc.ServiceDesc) error {
	rpcs := map[string]bool{}
	for _, m := range desc.Methods {
		rpcs[m.MethodName] = true
	}
	for _, s := range desc.Streams {
		rpcs[s.StreamName] = true
	}
	var errs []error
	for rpc := range rpcs {
		if _, ok := a[rpc]; !ok {
			errs = append(errs, fmt.Errorf("%s.%s has no row in the access table", desc.ServiceName, rpc))
		}
	}
	for rpc := range a {
		if !rpcs[rpc] {
			errs = append(errs, fmt.Errorf("the access table names %s, which %s does not have", rpc, desc.ServiceName))
		}
	}
	return errors.Join(errs...)
}

// Actor is who c acts as, recorded with the events it causes: the first of
// owners it is ("vendor:v1"); else the first of the unscoped kinds it
// holds, with the token's subject when that says more than the kind
// ("support:alice", but "support" for a token issued to "support"); else
// its first role, or its subject.
func Actor(c Caller, unscoped []Kind, owners ...Role) string {
	for _, o := range owners {
		if o.ID != "" && c.Is(o.Kind, o.ID) {
			return o.String()
		}
	}
	for _, k := range unscoped {
		if c.Has(k) {
			if c.Subject != "" && c.Subject != string(k) {
				return string(k) + ":" + c.Subject
			}
			return string(k)
		}
	}
	if len(c.Roles) > 0 {
		return c.Roles[0].String()
	}
	return c.Subject
}
