package postgres_test

import (
	"testing"

	"github.com/medsettle/medsettle/adapters/postgres/pgfixture"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

// TestContract runs the store ports' contract suite on a fresh seeded
// database per case (see pgfixture); adapters/memory runs the same suite.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) settlement.Store { return pgfixture.Store(t) })
}
