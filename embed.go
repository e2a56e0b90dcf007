// Package medsettle carries the reference data every binary needs: the rules
// directory (policies, catalogs, institutions) and the insured persons, so that
// `medsettle price` and `medsettle dev` work from any folder.
package medsettle

import (
	"embed"
	"io/fs"
)

//go:embed testdata/rules testdata/persons.csv testdata/dev-keys.csv
var data embed.FS

// Rules returns the embedded rules directory, in the layout rules.Load reads.
func Rules() fs.FS {
	sub, err := fs.Sub(data, "testdata/rules")
	if err != nil {
		// fs.Sub fails only on an invalid path, and this one is a constant.
		panic(err)
	}
	return sub
}

// Persons returns the embedded registry seed (persons.csv).
func Persons() ([]byte, error) { return data.ReadFile("testdata/persons.csv") }

// DevKeys returns the development API keys (testdata/dev-keys.csv) that
// `medsettle dev` loads. They are public: never use them in production.
func DevKeys() ([]byte, error) { return data.ReadFile("testdata/dev-keys.csv") }
