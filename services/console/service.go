// Package console is the support console: a web page where support staff
// find an order, see its whole life across the services, replay it as of
// any event, verify its hash chains, decide escalated claims, look at the
// parked events and at a vendor's trust and balances.
//
// The console is a client: it owns no events and reads no store. Every
// page is built from the services' public gRPC APIs, called with the
// signed-in person's own token, so the services' access tables decide
// what the console may show and do, exactly as for custodyctl. In the
// all-in-one it dials the process's own gRPC server; with
// --target=console it dials the services wherever --console-services says
// (one Deployment in Kubernetes).
//
// Pages are rendered on the server (html/template, which escapes every
// value) from templates and assets embedded in the binary (go:embed); one
// small script file moves the replay slider. README.md has the decisions.
package console

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/custody/custody/pkg/platform"
)

// Name is the module (target) name.
const Name = "console"

// DefaultAddr is where `custody run` serves the console unless
// --console-addr says otherwise.
const DefaultAddr = "127.0.0.1:7072"

// Options configure the console. Zero fields take the defaults.
type Options struct {
	// Addr is the HTTP listen address; "" serves no console. The binary's
	// flag defaults to DefaultAddr; Options built in code (tests that
	// embed every target) default to "", so that they never bind a fixed
	// port.
	Addr string
	// Services is where the services' gRPC APIs are: "" for this
	// process's own gRPC server; an address ("custody:7070") for all of
	// them; or a pattern with {service} ("{service}:7070"), replaced by
	// catalog, order, fulfilment, trust, payouts and audit.
	Services string
	// ClaimTarget is how long support aims to take to decide an escalated
	// claim (the trust service sets no deadline for support): the claims
	// queue shows each claim's age against it. Default 48h.
	ClaimTarget time.Duration
	// SecureCookie marks the session cookie Secure even though the
	// console itself serves plain HTTP (behind a TLS-terminating proxy).
	SecureCookie bool
}

// DefaultOptions are the defaults.
func DefaultOptions() Options { return Options{ClaimTarget: 48 * time.Hour} }

// RegisterFlags declares the settings on fs. --console-addr defaults to
// DefaultAddr (see Options.Addr).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addr, "console-addr", DefaultAddr, "support console HTTP address (empty: no console)")
	fs.StringVar(&o.Services, "console-services", o.Services,
		`where the console finds the services' gRPC APIs: empty for this process's own; host:port for all; or a pattern like "{service}:7070" ({service}: catalog, order, fulfilment, trust, payouts, audit)`)
	fs.Var(platform.PositiveDuration(&o.ClaimTarget), "console-claim-target",
		"how long support aims to take to decide an escalated claim: the claims queue shows each claim's age against it")
	fs.BoolVar(&o.SecureCookie, "console-secure-cookie", o.SecureCookie,
		"mark the console's session cookie Secure (set it when a TLS-terminating proxy serves the console over HTTPS)")
}

// Module is the console with DefaultOptions, as its flags set them.
func Module() platform.Module { return platform.WithFlags(Name, DefaultOptions(), parts) }

// NewModule is the console with explicit options (tests, embedding).
func NewModule(o Options) platform.Module { return platform.WithOptions(Name, o, parts) }

func parts(_ context.Context, d platform.Deps, o Options) (platform.Parts, error) {
	if o.ClaimTarget <= 0 {
		o.ClaimTarget = DefaultOptions().ClaimTarget
	}
	return platform.Parts{Web: &platform.Web{Name: Name, Addr: o.Addr, Handler: func(grpcAddr string) (http.Handler, error) {
		clients, err := Dial(o.Services, grpcAddr)
		if err != nil {
			return nil, err
		}
		return New(Config{Clients: clients, Clock: d.Clock, Logger: d.Logger, ClaimTarget: o.ClaimTarget, SecureCookie: o.SecureCookie})
	}}}, nil
}

// ServiceNames are the services the console calls, as --console-services
// names them.
var ServiceNames = []string{"catalog", "order", "fulfilment", "trust", "payouts", "audit"}

// addressOf is where service's API is, given --console-services and this
// process's own gRPC address.
func addressOf(services, own, service string) (string, error) {
	switch {
	case services == "":
		if own == "" {
			return "", fmt.Errorf("--console-services is empty and this process serves no gRPC")
		}
		return own, nil
	case strings.Contains(services, "{service}"):
		return strings.ReplaceAll(services, "{service}", service), nil
	case strings.ContainsAny(services, "{}"):
		return "", fmt.Errorf("--console-services %q: the only placeholder is {service}", services)
	}
	return services, nil
}
