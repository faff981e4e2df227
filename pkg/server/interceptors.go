package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errInternal is all a client learns about a panic; the details are logged.
var errInternal = status.Error(codes.Internal, "internal error")

// recoverUnary turns a handler panic into codes.Internal so one bad request
// cannot crash the process. Panics in goroutines a handler starts are not
// covered; those goroutines must recover themselves.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ctx, log, info.FullMethod, r)
				resp, err = nil, errInternal
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				logPanic(ss.Context(), log, info.FullMethod, r)
				err = errInternal
			}
		}()
		return handler(srv, ss)
	}
}

func logPanic(ctx context.Context, log *slog.Logger, method string, r any) {
	log.ErrorContext(ctx, "panic in gRPC handler",
		"method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}

func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, err, time.Since(start))
		return resp, err
	}
}

func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, err, time.Since(start))
		return err
	}
}

// logCall logs one finished call. The context carries the otelgrpc span, so
// a telemetry.NewLogger logger adds its trace id.
func logCall(ctx context.Context, log *slog.Logger, method string, err error, d time.Duration) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch {
	case code == codes.Internal || code == codes.Unknown || code == codes.DataLoss:
		level = slog.LevelError
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"):
		level = slog.LevelDebug // probes every few seconds
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", d),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	log.LogAttrs(ctx, level, "grpc call", attrs...)
}

// revealUnary reveals the personal fields of an answer (Config.Reveal).
func revealUnary(r Revealer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil || r == nil {
			return resp, err
		}
		return reveal(ctx, r, resp)
	}
}

// revealStream reveals the personal fields of every message a stream sends.
func revealStream(r Revealer) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if r == nil {
			return handler(srv, ss)
		}
		return handler(srv, &revealingStream{ServerStream: ss, r: r})
	}
}

type revealingStream struct {
	grpc.ServerStream
	r Revealer
}

func (s *revealingStream) SendMsg(m any) error {
	m, err := reveal(s.Context(), s.r, m)
	if err != nil {
		return err
	}
	return s.ServerStream.SendMsg(m)
}

func reveal(ctx context.Context, r Revealer, m any) (any, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return m, nil
	}
	out, err := r.Reveal(ctx, pm)
	if err != nil {
		return nil, status.Errorf(codes.DataLoss, "personal data in the answer cannot be read: %v", err)
	}
	return out, nil
}
