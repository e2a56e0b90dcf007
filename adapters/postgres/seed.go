package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/medsettle/medsettle/settlement"
)

// SeedPersons upserts registry rows in one transaction: a re-seed updates
// attributes but never touches counters or balances already in use.
func (s *Store) SeedPersons(ctx context.Context, persons []settlement.Person) error {
	err := s.txn(ctx, serializable, func(ctx context.Context, ptx pgx.Tx) error {
		t := &tx{tx: ptx}
		for i := range persons {
			if err := t.PutPerson(ctx, &persons[i]); err != nil {
				return err
			}
		}
		return t.flush(ctx)
	})
	if err != nil {
		return fmt.Errorf("seeding persons: %w", err)
	}
	return nil
}
