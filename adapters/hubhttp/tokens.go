package hubhttp

import (
	"fmt"
	"io"
	"strings"

	"github.com/medsettle/medsettle/settlement"
)

// Tokens are the secrets between the hub and the province platforms. Each
// direction has its own token, so that no province learns a token that
// would let it pose as the hub to another province:
//
//   - Province[p]: what province p presents to the hub (Client.Token). The
//     hub only checks it, so it may be held as "sha256:<hex>".
//   - Peer[p]: what the hub presents to province p's PeerHandler
//     (PeerClient.Token, PeerHandler's hubToken). The hub sends it, so it is
//     held as is.
//   - Admin: what the admin endpoints (faults, records) require; "" turns
//     them off. May be "sha256:<hex>".
type Tokens struct {
	Province map[string]string
	Peer     map[string]string
	Admin    string
}

// MinTokenLen is the shortest token LoadTokens accepts.
const MinTokenLen = settlement.MinSecretLen

// LoadTokens reads a tokens file: CSV rows `who,token`, '#' comments, where
// who is
//
//	<province>      e.g. 150000: the token that province presents to the hub (or sha256:<hex> of it)
//	hub:<province>  the token the hub presents to that province's /hub-peer/ endpoints
//	admin           the token of the admin endpoints (or sha256:<hex> of it)
//
// A header row `who,token` is allowed. Tokens have at least MinTokenLen characters.
func LoadTokens(r io.Reader) (Tokens, error) {
	t := Tokens{Province: map[string]string{}, Peer: map[string]string{}}
	for row, err := range settlement.ReadSecrets(r, "tokens", "who") {
		if err != nil {
			return Tokens{}, err
		}
		who, tok, line := row.Who, row.Secret, row.Line
		_, hashed, ok := settlement.SecretHash(tok)
		switch {
		case !ok:
			return Tokens{}, fmt.Errorf("tokens:%d: a sha256 hash is 64 hex digits", line)
		case !hashed && len(tok) < MinTokenLen:
			return Tokens{}, fmt.Errorf("tokens:%d: the token of %s is shorter than %d characters", line, who, MinTokenLen)
		}
		var m map[string]string
		key := who
		switch {
		case who == "admin":
			if t.Admin != "" {
				return Tokens{}, fmt.Errorf("tokens:%d: a second admin token", line)
			}
			t.Admin = tok
			continue
		case strings.HasPrefix(who, "hub:"):
			key = who[len("hub:"):]
			if hashed {
				return Tokens{}, fmt.Errorf("tokens:%d: the hub sends the token of %s, so it cannot be a hash", line, who)
			}
			m = t.Peer
		default:
			m = t.Province
		}
		if !isProvince(key) {
			return Tokens{}, fmt.Errorf("tokens:%d: %q is not a province code (six digits)", line, key)
		}
		if _, dup := m[key]; dup {
			return Tokens{}, fmt.Errorf("tokens:%d: a second token for %s", line, who)
		}
		m[key] = tok
	}
	return t, nil
}

func isProvince(s string) bool {
	if len(s) != 6 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Development tokens: guessable on purpose, for a hub and platforms on one
// machine (`medsettle hub --dev-tokens`). Never use them anywhere else.
const DevAdminToken = "dev-hub-admin-token"

// DevProvinceToken is the development token province presents to the hub: "dev-<province>-to-hub".
func DevProvinceToken(province string) string { return "dev-" + province + "-to-hub" }

// DevPeerToken is the development token the hub presents to province: "dev-hub-to-<province>".
func DevPeerToken(province string) string { return "dev-hub-to-" + province }

// DevTokens returns the development tokens of provinces.
func DevTokens(provinces ...string) Tokens {
	t := Tokens{Province: map[string]string{}, Peer: map[string]string{}, Admin: DevAdminToken}
	for _, p := range provinces {
		t.Province[p] = DevProvinceToken(p)
		t.Peer[p] = DevPeerToken(p)
	}
	return t
}
