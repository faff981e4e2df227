package console

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	auditv1 "github.com/custody/custody/proto/custody/audit/v1"
	catalogv1 "github.com/custody/custody/proto/custody/catalog/v1"
	fulfilmentv1 "github.com/custody/custody/proto/custody/fulfilment/v1"
	orderv1 "github.com/custody/custody/proto/custody/order/v1"
	payoutsv1 "github.com/custody/custody/proto/custody/payouts/v1"
	trustv1 "github.com/custody/custody/proto/custody/trust/v1"
)

// Clients are the services' APIs the console calls. A call carries the
// signed-in person's token (withToken), never one of the console's own.
type Clients struct {
	Catalog    catalogv1.CatalogServiceClient
	Order      orderv1.OrderServiceClient
	Fulfilment fulfilmentv1.FulfilmentServiceClient
	Trust      trustv1.TrustServiceClient
	Payouts    payoutsv1.PayoutsServiceClient
	Audit      auditv1.AuditServiceClient
}

// maxRecv is the largest answer the console takes (a long timeline).
const maxRecv = 64 << 20

// Dial connects to the services where services says (Options.Services),
// own being this process's gRPC address. Connections are lazy: a service
// that is down fails the pages that need it, not the console's start.
func Dial(services, own string) (Clients, error) {
	conns := map[string]*grpc.ClientConn{}
	conn := func(service string) (*grpc.ClientConn, error) {
		addr, err := addressOf(services, own, service)
		if err != nil {
			return nil, err
		}
		if c, ok := conns[addr]; ok {
			return c, nil
		}
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)))
		if err != nil {
			return nil, fmt.Errorf("console: dial %s at %s: %w", service, addr, err)
		}
		conns[addr] = c
		return c, nil
	}
	var c Clients
	var err error
	get := func(service string) grpc.ClientConnInterface {
		if err != nil {
			return nil
		}
		var cc *grpc.ClientConn
		cc, err = conn(service)
		return cc
	}
	c.Catalog = catalogv1.NewCatalogServiceClient(get("catalog"))
	c.Order = orderv1.NewOrderServiceClient(get("order"))
	c.Fulfilment = fulfilmentv1.NewFulfilmentServiceClient(get("fulfilment"))
	c.Trust = trustv1.NewTrustServiceClient(get("trust"))
	c.Payouts = payoutsv1.NewPayoutsServiceClient(get("payouts"))
	c.Audit = auditv1.NewAuditServiceClient(get("audit"))
	return c, err
}

// withToken makes ctx's outgoing calls carry token as their bearer token.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
