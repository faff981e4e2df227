package auth

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TokenVerifier turns a bearer token into a Caller. *Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (Caller, error)
}

// DefaultExempt lists the full-method prefixes that need no token, so that
// probes and `grpcurl list` work: health checks and reflection.
var DefaultExempt = []string{"/grpc.health.v1.Health/", "/grpc.reflection."}

// UnaryServerInterceptor authenticates every unary call whose full method
// does not start with one of the exempt prefixes (nil means DefaultExempt;
// pass an empty non-nil slice to exempt nothing). It reads
// "authorization: Bearer <jwt>" metadata and stores the Caller in the
// handler's context; a missing or invalid token fails with Unauthenticated.
func UnaryServerInterceptor(v TokenVerifier, exempt []string) grpc.UnaryServerInterceptor {
	exempt = exemptOrDefault(exempt)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if isExempt(info.FullMethod, exempt) {
			return handler(ctx, req)
		}
		ctx, err := authenticate(ctx, v)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls.
func StreamServerInterceptor(v TokenVerifier, exempt []string) grpc.StreamServerInterceptor {
	exempt = exemptOrDefault(exempt)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if isExempt(info.FullMethod, exempt) {
			return handler(srv, ss)
		}
		ctx, err := authenticate(ss.Context(), v)
		if err != nil {
			return err
		}
		return handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
	}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *streamWithContext) Context() context.Context { return s.ctx }

func exemptOrDefault(exempt []string) []string {
	if exempt == nil {
		return DefaultExempt
	}
	return exempt
}

func isExempt(method string, exempt []string) bool {
	for _, p := range exempt {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}

func authenticate(ctx context.Context, v TokenVerifier) (context.Context, error) {
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, err
	}
	caller, err := v.Verify(ctx, token)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return WithCaller(ctx, caller), nil
}

func bearerToken(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, `missing bearer token: send metadata "authorization: Bearer <jwt>"`)
	}
	if len(vals) > 1 {
		return "", status.Error(codes.Unauthenticated, "more than one authorization header")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", status.Error(codes.Unauthenticated, `malformed authorization metadata: want "Bearer <jwt>"`)
	}
	return strings.TrimSpace(token), nil
}

// BearerToken is client-side per-RPC credentials sending a static token:
//
//	grpc.NewClient(target, grpc.WithPerRPCCredentials(auth.BearerToken(tok)), ...)
//
// It does not require transport security so it works over plaintext
// loopback in the all-in-one; production deployments run gRPC over TLS or
// mTLS so the token is never sent in the clear.
type BearerToken string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (BearerToken) RequireTransportSecurity() bool { return false }
