package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/custody/custody/pkg/clock"
)

// Issuer and Audience are fixed: Custody tokens are only for Custody.
const (
	TokenIssuer   = "custody"
	TokenAudience = "custody"
)

// DefaultLeeway is the clock skew Verifier tolerates on exp/iat/nbf.
const DefaultLeeway = 30 * time.Second

// ErrInvalidToken is wrapped by every Verify failure.
var ErrInvalidToken = errors.New("invalid token")

// Claims is the JWT payload of a Custody token.
type Claims struct {
	Roles []string `json:"roles"`
	jwt.RegisteredClaims
}

// Issuer mints signed tokens.
type Issuer struct {
	key   ed25519.PrivateKey
	clock clock.Clock
}

// NewIssuer returns an Issuer signing with key. A nil clock means real time;
// tokens should use real time even when the services run on a scaled clock.
func NewIssuer(key ed25519.PrivateKey, c clock.Clock) *Issuer {
	if c == nil {
		c = clock.Real()
	}
	return &Issuer{key: key, clock: c}
}

// Mint returns a token for subject holding roles, valid for ttl.
func (i *Issuer) Mint(subject string, roles []Role, ttl time.Duration) (string, error) {
	if subject == "" {
		return "", errors.New("mint token: empty subject")
	}
	if len(roles) == 0 {
		return "", errors.New("mint token: no roles")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl %v must be positive", ttl)
	}
	rs := make([]string, len(roles))
	for n, r := range roles {
		if err := r.Validate(); err != nil {
			return "", fmt.Errorf("mint token: %w", err)
		}
		rs[n] = r.String()
	}
	now := i.clock.Now()
	claims := Claims{
		Roles: rs,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    TokenIssuer,
			Audience:  jwt.ClaimStrings{TokenAudience},
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        rand.Text(),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// Verifier checks tokens minted by an Issuer holding the matching key.
//
// A client sends the same token with every call, and checking its
// signature cost 7% of the CPU under load, so the Verifier remembers the
// callers of tokens whose signature it has checked (up to
// verifiedCacheSize). Their times (expiry, issued at) are checked on every
// call all the same, against the clock.
type Verifier struct {
	pub       ed25519.PublicKey
	parser    *jwt.Parser
	validator *jwt.Validator

	mu       sync.Mutex
	verified map[string]verified
}

type verified struct {
	claims Claims
	caller Caller
}

const verifiedCacheSize = 4096

// NewVerifier returns a Verifier for tokens signed by pub's private key.
// A nil clock means real time.
func NewVerifier(pub ed25519.PublicKey, c clock.Clock) *Verifier {
	if c == nil {
		c = clock.Real()
	}
	rules := []jwt.ParserOption{
		jwt.WithIssuer(TokenIssuer),
		jwt.WithAudience(TokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(DefaultLeeway),
		jwt.WithTimeFunc(c.Now),
	}
	return &Verifier{
		pub: pub,
		parser: jwt.NewParser(append(rules,
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithStrictDecoding())...),
		validator: jwt.NewValidator(rules...),
		verified:  map[string]verified{},
	}
}

// Verify checks the token's signature (EdDSA only), issuer, audience and
// expiry, and returns the caller it names. The token must carry a subject
// and at least one well-formed role. Errors wrap ErrInvalidToken and, where
// there is one, the jwt sentinel (jwt.ErrTokenExpired, ...).
func (v *Verifier) Verify(ctx context.Context, token string) (Caller, error) {
	v.mu.Lock()
	known, ok := v.verified[token]
	v.mu.Unlock()
	if ok {
		if err := v.validator.Validate(known.claims); err != nil {
			return Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		return known.caller, nil
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already enforces this; keep the key type tied to the alg.
		if t.Method != jwt.SigningMethodEdDSA {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return v.pub, nil
	})
	if err != nil {
		return Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return Caller{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	if len(claims.Roles) == 0 {
		return Caller{}, fmt.Errorf("%w: no roles", ErrInvalidToken)
	}
	roles, err := ParseRoles(claims.Roles)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	caller := Caller{Subject: claims.Subject, Roles: roles}
	v.mu.Lock()
	if len(v.verified) >= verifiedCacheSize {
		clear(v.verified) // simplest bound; busy callers come straight back
	}
	v.verified[token] = verified{claims: claims, caller: caller}
	v.mu.Unlock()
	return caller, nil
}
