package hubhttp_test

import (
	"testing"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
)

// Every test that opens a province gets its own database, cloned from a
// template that is migrated and seeded once per test binary.
func TestMain(m *testing.M) { pgfixture.Main(m) }
