package server

import (
	"fmt"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/custody/custody/pkg/auth"
)

// Dial returns a client connection to target (grpc.NewClient syntax, e.g.
// "127.0.0.1:7070" or "dns:///order:7070") that sends token as a bearer
// token on every call (none if empty) and propagates trace context.
// It uses plaintext; pass grpc.WithTransportCredentials in opts for TLS,
// as later options override earlier ones.
func Dial(target, token string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(DefaultMaxSendMsgSize)),
	}
	if token != "" {
		base = append(base, grpc.WithPerRPCCredentials(auth.BearerToken(token)))
	}
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}
