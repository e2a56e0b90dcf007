package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/memory"
	"github.com/medsettle/medsettle/settlement"
	"github.com/medsettle/medsettle/settlement/storetest"
)

func TestContract(t *testing.T) {
	persons := storetest.Persons(t)
	storetest.Run(t, func(t *testing.T) settlement.Store {
		st, err := memory.New(persons)
		require.NoError(t, err)
		return st
	})
}

func TestNewRefusesADuplicateCertificate(t *testing.T) {
	persons := storetest.Persons(t)[:2]
	persons[1].Certno = persons[0].Certno
	_, err := memory.New(persons)
	require.Error(t, err)
}
