package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/custody/custody/pkg/auth"
	"github.com/custody/custody/pkg/clock"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    auth.Role
		wantErr bool
	}{
		{in: "buyer:b-1", want: auth.Role{Kind: auth.Buyer, ID: "b-1"}},
		{in: "vendor:v_7.eu", want: auth.Role{Kind: auth.Vendor, ID: "v_7.eu"}},
		{in: "creator:c1", want: auth.Role{Kind: auth.Creator, ID: "c1"}},
		{in: "carrier:dhl", want: auth.Role{Kind: auth.Carrier, ID: "dhl"}},
		{in: "support", want: auth.Role{Kind: auth.Support}},
		{in: "platform", want: auth.Role{Kind: auth.Platform}},
		{in: "service", want: auth.Role{Kind: auth.Service}},
		{in: "", wantErr: true},
		{in: "buyer", wantErr: true},
		{in: "buyer:", wantErr: true},
		{in: "support:", wantErr: true},
		{in: "support:x", wantErr: true},
		{in: "admin", wantErr: true},
		{in: "Buyer:b1", wantErr: true},
		{in: "buyer:b 1", wantErr: true},
		{in: "buyer:b:1", wantErr: true},
		{in: "buyer:" + string(bytes.Repeat([]byte("x"), 129)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := auth.ParseRole(tt.in)
			if tt.wantErr {
				if !errors.Is(err, auth.ErrInvalidRole) {
					t.Fatalf("ParseRole(%q) = %v, %v; want ErrInvalidRole", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRole(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"v_7.eu-1":               true,
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"":                       false,
		"v 1":                    false,
		"v:1":                    false,
	} {
		if got := auth.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestCaller(t *testing.T) {
	c := auth.Caller{Subject: "alice", Roles: []auth.Role{
		{Kind: auth.Vendor, ID: "v1"}, {Kind: auth.Vendor, ID: "v2"}, {Kind: auth.Support},
	}}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"has vendor", c.Has(auth.Vendor), true},
		{"has support", c.Has(auth.Support), true},
		{"lacks buyer", c.Has(auth.Buyer), false},
		{"is vendor v2", c.Is(auth.Vendor, "v2"), true},
		{"is not vendor v3", c.Is(auth.Vendor, "v3"), false},
		{"is support", c.Is(auth.Support, ""), true},
		{"vendor ids", slices.Equal(c.IDsOf(auth.Vendor), []string{"v1", "v2"}), true},
		{"no buyer ids", len(c.IDsOf(auth.Buyer)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if _, ok := auth.CallerFrom(t.Context()); ok {
		t.Fatal("CallerFrom on empty context reported a caller")
	}
	got, ok := auth.CallerFrom(auth.WithCaller(t.Context(), c))
	if !ok || got.Subject != "alice" {
		t.Fatalf("CallerFrom = %v, %v", got, ok)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, auth.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing.key mode = %v, want 0600", fi.Mode().Perm())
	}
	second, err := auth.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(second) {
		t.Fatal("second start produced a different key")
	}
	pub, err := auth.LoadPublicKey(filepath.Join(dir, auth.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(first.Public()) {
		t.Fatal("signing.pub does not match signing.key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("data dir holds %d files, want 2 (no temp files left)", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := auth.LoadOrCreateKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !k.Equal(keys[0]) {
			t.Fatal("concurrent starts disagree on the key")
		}
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadPublicKey(garbage); err == nil {
		t.Fatal("LoadPublicKey accepted garbage")
	}
	if _, err := auth.LoadPrivateKey(garbage); err == nil {
		t.Fatal("LoadPrivateKey accepted garbage")
	}
	if _, err := auth.LoadPublicKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want ErrNotExist", err)
	}
}

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	k, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// sign builds a token with arbitrary claims and method, for attack cases.
func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	key := mustKey(t)
	other := mustKey(t)
	now := time.Now()
	vendor := []auth.Role{{Kind: auth.Vendor, ID: "v1"}}
	mint := func(k ed25519.PrivateKey, at time.Time, ttl time.Duration) string {
		tok, err := auth.NewIssuer(k, clock.NewFake(at)).Mint("alice", vendor, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	claims := func(edit func(*auth.Claims)) *auth.Claims {
		c := &auth.Claims{Roles: []string{"vendor:v1"}, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: auth.TokenIssuer, Audience: jwt.ClaimStrings{auth.TokenAudience}, Subject: "alice",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
		edit(c)
		return c
	}
	tests := []struct {
		name    string
		token   string
		wantErr error // nil means valid
	}{
		{name: "valid", token: mint(key, now, time.Hour)},
		{name: "expired within leeway", token: mint(key, now.Add(-time.Hour-10*time.Second), time.Hour)},
		{name: "expired", token: mint(key, now.Add(-2*time.Hour), time.Hour), wantErr: jwt.ErrTokenExpired},
		{name: "issued in the future", token: mint(key, now.Add(time.Hour), time.Hour), wantErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "wrong key", token: mint(other, now, time.Hour), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(func(*auth.Claims) {})), wantErr: jwt.ErrTokenSignatureInvalid},
		// Key confusion: HMAC keyed with the public key, which attackers know.
		{name: "HS256 with public key", token: sign(t, jwt.SigningMethodHS256, []byte(pubOf(key)), claims(func(*auth.Claims) {})), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "wrong issuer", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.Issuer = "evil" })), wantErr: jwt.ErrTokenInvalidIssuer},
		{name: "wrong audience", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), wantErr: jwt.ErrTokenInvalidAudience},
		{name: "no expiry", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.ExpiresAt = nil })), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "no roles", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.Roles = nil })), wantErr: auth.ErrInvalidToken},
		{name: "malformed role", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.Roles = []string{"root"} })), wantErr: auth.ErrInvalidRole},
		{name: "no subject", token: sign(t, jwt.SigningMethodEdDSA, key, claims(func(c *auth.Claims) { c.Subject = "" })), wantErr: auth.ErrInvalidToken},
		{name: "garbage", token: "not.a.jwt", wantErr: jwt.ErrTokenMalformed},
		{name: "empty", token: "", wantErr: jwt.ErrTokenMalformed},
	}
	v := auth.NewVerifier(pubOf(key), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "alice" || !c.Is(auth.Vendor, "v1") {
					t.Fatalf("caller = %+v", c)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v, want ErrInvalidToken and %v", err, tt.wantErr)
			}
		})
	}
}

// A token verified once is remembered (its signature is not checked
// again), but its expiry still holds against the clock on every call.
func TestVerifiedTokenStillExpires(t *testing.T) {
	key := mustKey(t)
	clk := clock.NewFake(time.Now())
	tok, err := auth.NewIssuer(key, clk).Mint("alice", []auth.Role{{Kind: auth.Vendor, ID: "v1"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(pubOf(key), clk)
	for range 2 {
		if c, err := v.Verify(t.Context(), tok); err != nil || c.Subject != "alice" {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	clk.Advance(time.Minute + auth.DefaultLeeway + time.Second)
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrInvalidToken and ErrTokenExpired", err)
	}
	// A token with the same claims under another signature is not the one remembered.
	forged := tok[:strings.LastIndex(tok, ".")+1] + "AAAA"
	if _, err := v.Verify(t.Context(), forged); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify of a forged signature = %v", err)
	}
}

func TestMintRejects(t *testing.T) {
	iss := auth.NewIssuer(mustKey(t), nil)
	tests := []struct {
		name    string
		subject string
		roles   []auth.Role
		ttl     time.Duration
	}{
		{"empty subject", "", []auth.Role{{Kind: auth.Support}}, time.Hour},
		{"no roles", "s", nil, time.Hour},
		{"bad role", "s", []auth.Role{{Kind: auth.Buyer}}, time.Hour},
		{"zero ttl", "s", []auth.Role{{Kind: auth.Support}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := iss.Mint(tt.subject, tt.roles, tt.ttl); err == nil {
				t.Fatalf("Mint = %q, want error", tok)
			}
		})
	}
}

// startHealth serves the standard health service on loopback behind the
// auth interceptors and a recorder that captures the authenticated caller.
func startHealth(t *testing.T, v auth.TokenVerifier, exempt []string) (healthpb.HealthClient, func() (auth.Caller, bool)) {
	t.Helper()
	var mu sync.Mutex
	var last auth.Caller
	var seen bool
	record := func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		last, seen = auth.CallerFrom(ctx)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(v, exempt),
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				record(ctx)
				return h(ctx, req)
			}),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(v, exempt),
			func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				record(ss.Context())
				return h(srv, ss)
			}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn), func() (auth.Caller, bool) {
		mu.Lock()
		defer mu.Unlock()
		return last, seen
	}
}

func TestInterceptor(t *testing.T) {
	key := mustKey(t)
	good, err := auth.NewIssuer(key, nil).Mint("bob", []auth.Role{{Kind: auth.Buyer, ID: "b1"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.NewIssuer(mustKey(t), nil).Mint("bob", []auth.Role{{Kind: auth.Support}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// No exemptions, so the health service stands in for any protected API.
	client, lastCaller := startHealth(t, auth.NewVerifier(pubOf(key), nil), []string{})

	tests := []struct {
		name  string
		creds grpc.CallOption // nil: no token
		want  codes.Code
	}{
		{"no token", nil, codes.Unauthenticated},
		{"forged token", grpc.PerRPCCredentials(auth.BearerToken(forged)), codes.Unauthenticated},
		{"garbage token", grpc.PerRPCCredentials(auth.BearerToken("x.y.z")), codes.Unauthenticated},
		{"valid token", grpc.PerRPCCredentials(auth.BearerToken(good)), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []grpc.CallOption
			if tt.creds != nil {
				opts = append(opts, tt.creds)
			}
			t.Run("unary", func(t *testing.T) {
				_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}, opts...)
				if got := status.Code(err); got != tt.want {
					t.Fatalf("Check code = %v (%v), want %v", got, err, tt.want)
				}
				if tt.want == codes.OK {
					if c, ok := lastCaller(); !ok || !c.Is(auth.Buyer, "b1") || c.Subject != "bob" {
						t.Fatalf("handler saw caller %+v, %v", c, ok)
					}
				}
			})
			t.Run("stream", func(t *testing.T) {
				stream, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{}, opts...)
				if err == nil {
					_, err = stream.Recv()
				}
				if got := status.Code(err); got != tt.want {
					t.Fatalf("Watch code = %v (%v), want %v", got, err, tt.want)
				}
			})
		})
	}
}

func TestInterceptorDefaultExempt(t *testing.T) {
	client, _ := startHealth(t, auth.NewVerifier(pubOf(mustKey(t)), nil), nil)
	if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without token: %v, want exempt by default", err)
	}
}

func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"buyer:b-1", "support", "vendor:", ":x", "carrier:a:b", "platform:p", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := auth.ParseRole(s)
		if err != nil {
			return
		}
		if r.String() != s {
			t.Fatalf("ParseRole(%q).String() = %q", s, r.String())
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed role %q fails Validate: %v", s, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	key := mustKey(f)
	tok, err := auth.NewIssuer(key, nil).Mint("alice", []auth.Role{{Kind: auth.Support}}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{tok, tok[:len(tok)-3], "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "...."} {
		f.Add(s)
	}
	v := auth.NewVerifier(pubOf(key), nil)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(t.Context(), s)
		if err == nil && (c.Subject == "" || len(c.Roles) == 0) {
			t.Fatalf("Verify accepted %q with caller %+v", s, c)
		}
		if err != nil && !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
		}
	})
}
