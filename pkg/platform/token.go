package platform

import (
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"time"

	"github.com/custody/custody/pkg/auth"
)

// KeyDir is where the all-in-one keeps its token signing key.
func KeyDir(dataDir string) string { return filepath.Join(dataDir, "keys") }

// MintToken signs a token for roles with the key in keyFile, or else the
// data directory's key (created on first use, as `custody run` does).
// The subject defaults to the first role.
func MintToken(dataDir, keyFile, subject string, roles []string, ttl time.Duration) (string, error) {
	if len(roles) == 0 {
		return "", errors.New("at least one role is required")
	}
	parsed, err := auth.ParseRoles(roles)
	if err != nil {
		return "", err
	}
	if subject == "" {
		subject = roles[0]
	}
	var key ed25519.PrivateKey
	if keyFile != "" {
		key, err = auth.LoadPrivateKey(keyFile)
	} else {
		key, err = auth.LoadOrCreateKey(KeyDir(dataDir))
	}
	if err != nil {
		return "", err
	}
	return auth.NewIssuer(key, nil).Mint(subject, parsed, ttl)
}
