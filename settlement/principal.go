package settlement

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
)

// Principal is who an API key belongs to (the counter interface and the
// bureau console authenticate by key): an institution, or a bureau (医保局) of
// one pooling region.
type Principal struct {
	Institution string // fixmedins_code, for an institution key
	Region      string // admdvs, for a bureau key
}

// IsBureau reports whether p is a bureau.
func (p Principal) IsBureau() bool { return p.Region != "" }

func (p Principal) String() string {
	if p.IsBureau() {
		return "bureau:" + p.Region
	}
	return p.Institution
}

// Keys maps API key hashes to principals. Only SHA-256 hashes are held, so a
// leaked keys file or memory dump does not hand out keys.
type Keys struct {
	byHash map[[32]byte]Principal
}

// LoadKeys reads a keys file: CSV rows `principal,key` where principal is a
// fixmedins_code or `bureau:<admdvs>`, and key is the key itself (hashed at
// once; for development) or `sha256:<hex>` (for production, so the file never
// holds a usable key). A header row `principal,key` is allowed.
func LoadKeys(r io.Reader) (*Keys, error) {
	k := &Keys{byHash: map[[32]byte]Principal{}}
	for row, err := range ReadKeyRows(r) {
		if err != nil {
			return nil, err
		}
		who, line := row.Who, row.Line
		var p Principal
		if region, ok := strings.CutPrefix(who, "bureau:"); ok {
			p.Region = region
		} else {
			p.Institution = who
		}
		if p.Region == "" && p.Institution == "" {
			return nil, fmt.Errorf("keys:%d: empty principal", line)
		}
		h, hashed, ok := SecretHash(row.Secret)
		switch {
		case !ok:
			return nil, fmt.Errorf("keys:%d: sha256 hash must be 64 hex digits", line)
		case !hashed && len(row.Secret) < MinSecretLen:
			return nil, fmt.Errorf("keys:%d: key for %s is shorter than %d characters", line, who, MinSecretLen)
		}
		if _, dup := k.byHash[h]; dup {
			return nil, fmt.Errorf("keys:%d: the same key is listed twice", line)
		}
		k.byHash[h] = p
	}
	return k, nil
}

// Lookup returns the principal of a presented key. The lookup is by hash,
// so timing reveals nothing about stored keys' contents.
func (k *Keys) Lookup(key string) (Principal, bool) {
	p, ok := k.byHash[sha256.Sum256([]byte(key))]
	return p, ok
}
