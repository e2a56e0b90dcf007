package settlement

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
)

// Secrets files (the API keys file, the hub's tokens file) share one format:
// CSV rows `who,secret`, '#' comments, spaces around fields ignored, an
// optional header row. A secret is written as itself or, where it is only
// checked and never sent, as `sha256:<hex>` of it, so that the file holds no
// usable secret.

// MinSecretLen is the shortest secret written as itself that a secrets file accepts.
const MinSecretLen = 16

// SecretRow is one row of a secrets file.
type SecretRow struct {
	Line   int // in the file, for error messages
	Who    string
	Secret string
}

// ReadSecrets yields the rows of a secrets file in order, skipping those
// whose who is one of header, and stops after the first error, which starts
// with what ("keys", "tokens"). A reader checks each row as it comes, so a
// file is refused at its first bad line.
func ReadSecrets(r io.Reader, what string, header ...string) iter.Seq2[SecretRow, error] {
	return func(yield func(SecretRow, error) bool) {
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = 2
		cr.Comment = '#'
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(SecretRow{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			line, _ := cr.FieldPos(0)
			row := SecretRow{Line: line, Who: strings.TrimSpace(rec[0]), Secret: strings.TrimSpace(rec[1])}
			if !slices.Contains(header, row.Who) && !yield(row, nil) {
				return
			}
		}
	}
}

// ReadKeyRows yields the rows of an API keys file (see LoadKeys), header skipped.
func ReadKeyRows(r io.Reader) iter.Seq2[SecretRow, error] {
	return ReadSecrets(r, "keys", "principal", "fixmedins_code")
}

// SecretHash returns the SHA-256 of a secret as a secrets file writes it:
// the hash of the secret itself, or the hash written as `sha256:<hex>`
// (hashed). ok is false when that hex is not 64 digits.
func SecretHash(secret string) (h [sha256.Size]byte, hashed, ok bool) {
	hx, hashed := strings.CutPrefix(secret, "sha256:")
	if !hashed {
		return sha256.Sum256([]byte(secret)), false, true
	}
	b, err := hex.DecodeString(hx)
	if err != nil || len(b) != sha256.Size {
		return h, true, false
	}
	copy(h[:], b)
	return h, true, true
}

// HashKey returns the `sha256:<hex>` form of a key for a production keys file.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}
