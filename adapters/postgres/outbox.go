package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/medsettle/medsettle/settlement"
)

// The outbox relay's side of the database (the relay itself is
// adapters/kafka). Every ledger transaction writes its event to the outbox in
// the transaction that made it (AppendLedger); relays read the rows of the
// partitions they lease, publish them, and delete them (migration 0009: the
// outbox is a queue of what is still to publish; the ledger is the record).
//
// Leases: outbox_leases holds one row per outbox partition, (part, owner,
// expires_at). A relay claims or renews a partition with a conditional upsert
// that succeeds only when the row is absent, expired, or already its own, in
// one SERIALIZABLE transaction; it deletes published rows only in a
// transaction that also updates its lease row under the condition that it
// is still the owner and the lease is unexpired, so a takeover and a late
// mark can never both commit. Times are the database's now(), so relays on
// hosts with skewed clocks agree on expiry. Relays heartbeat in
// outbox_relays and each holds its fair share, ceil(16 / live relays), of
// the partitions: a relay above its share releases partitions (between
// batches, never while publishing them) and one below claims free or
// expired ones.

var _ settlement.Outbox = (*Store)(nil)

// outboxParts is how many partitions the outbox is split into (part is
// 0..outboxParts-1, see settlement.OutboxPart): the unit a relay leases.
const outboxParts = settlement.OutboxParts

// OutboxLease is a row of outbox_leases, for monitoring and tests.
type OutboxLease struct {
	Part      int
	Owner     string
	ExpiresAt time.Time
	Live      bool // unexpired as of the database's clock
}

// ms is a duration as whole milliseconds, for `$n * INTERVAL '1 millisecond'`.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

var serializable = pgx.TxOptions{IsoLevel: pgx.Serializable}

// preference orders the partitions for owner, starting at a point that
// depends on its name, so that relays starting together reach for different
// partitions first instead of all colliding on partition 0.
func preference(owner string) []int {
	h := fnv.New32a()
	h.Write([]byte(owner))
	start := int(h.Sum32() % outboxParts)
	out := make([]int, outboxParts)
	for i := range out {
		out[i] = (start + i) % outboxParts
	}
	return out
}

// LeaseOutbox is a relay's heartbeat: in one SERIALIZABLE transaction it
// records owner as live until now()+ttl, counts the live relays, renews the
// partitions owner holds up to its fair share ceil(OutboxParts / live),
// releases the ones above it, and claims free or expired partitions up to
// it. It returns the partitions owner holds until now()+ttl, sorted. A relay
// must stop publishing them at the latest ttl after it called LeaseOutbox
// (the database's clock started later than the relay's).
func (s *Store) LeaseOutbox(ctx context.Context, owner string, ttl time.Duration) ([]int, error) {
	if owner == "" {
		return nil, errors.New("postgres: outbox lease: empty owner")
	}
	var held []int
	err := s.txn(ctx, serializable, func(ctx context.Context, tx pgx.Tx) error {
		held = held[:0]
		if _, err := tx.Exec(ctx, `INSERT INTO outbox_relays (owner, expires_at) VALUES ($1, now() + $2::INT8 * INTERVAL '1 millisecond')
			ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at`, owner, ms(ttl)); err != nil {
			return fmt.Errorf("relay heartbeat: %w", err)
		}
		// Relays gone for a whole lease period are forgotten.
		if _, err := tx.Exec(ctx, `DELETE FROM outbox_relays WHERE expires_at < now() - $1::INT8 * INTERVAL '1 millisecond'`, ms(ttl)); err != nil {
			return fmt.Errorf("forgetting dead relays: %w", err)
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM outbox_relays WHERE expires_at > now()`).Scan(&live); err != nil {
			return fmt.Errorf("counting relays: %w", err)
		}
		share := (outboxParts + max(live, 1) - 1) / max(live, 1)

		rows, err := tx.Query(ctx, `SELECT part, owner, expires_at > now() FROM outbox_leases`)
		if err != nil {
			return fmt.Errorf("reading leases: %w", err)
		}
		taken := map[int]bool{} // held by another relay, unexpired
		mine := map[int]bool{}
		for rows.Next() {
			var part int
			var who string
			var live bool
			if err := rows.Scan(&part, &who, &live); err != nil {
				rows.Close()
				return fmt.Errorf("reading leases: %w", err)
			}
			switch {
			case who == owner:
				mine[part] = true // even expired: nobody took it over, so it is safe to renew
			case live:
				taken[part] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading leases: %w", err)
		}

		var want, release []int
		for _, p := range preference(owner) {
			if mine[p] {
				if len(want) < share {
					want = append(want, p)
				} else {
					release = append(release, p)
				}
			}
		}
		for _, p := range preference(owner) {
			if len(want) >= share {
				break
			}
			if !mine[p] && !taken[p] {
				want = append(want, p)
			}
		}
		if len(release) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM outbox_leases WHERE owner = $1 AND part = ANY($2)`, owner, release); err != nil {
				return fmt.Errorf("releasing leases: %w", err)
			}
		}
		// Claim or renew: succeeds on a free partition, an expired lease or
		// one's own lease, and changes nothing otherwise.
		var b pgx.Batch
		for _, p := range want {
			b.Queue(`INSERT INTO outbox_leases (part, owner, expires_at) VALUES ($1, $2, now() + $3::INT8 * INTERVAL '1 millisecond')
				ON CONFLICT (part) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
				WHERE outbox_leases.owner = excluded.owner OR outbox_leases.expires_at <= now()`, p, owner, ms(ttl))
		}
		br := tx.SendBatch(ctx, &b)
		for _, p := range want {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("claiming partition %d: %w", p, err)
			}
			if tag.RowsAffected() == 1 {
				held = append(held, p)
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("outbox lease for %s: %w", owner, err)
	}
	slices.Sort(held)
	return held, nil
}

// PendingOutbox returns up to limit unpublished events of a partition in
// (chain, seq) order: each person's events in the order they committed, a
// range of the primary key (part, chain, seq). It
// reads at READ COMMITTED, one statement: committed rows are all it needs
// (a chain's seq n+1 commits only after seq n, so a snapshot holding one
// holds the other), and a SERIALIZABLE read would make settlements that
// insert into the same index pages abort more often. BEGIN, the read and
// COMMIT travel together: one round trip.
func (s *Store) PendingOutbox(ctx context.Context, part, limit int) ([]settlement.OutboxEvent, error) {
	var out []settlement.OutboxEvent
	err := s.retry(ctx, true, func(ctx context.Context) error {
		return s.pipelined(ctx, "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY", func(ctx context.Context, stx settlement.Tx) error {
			out = out[:0]
			stx.(*tx).queueRead(func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var e settlement.OutboxEvent
					var payload string
					if err := rows.Scan(&e.Chain, &e.Seq, &e.Part, &e.ID, &e.Type, &e.Key, &payload, &e.Created); err != nil {
						return err
					}
					e.Payload = []byte(payload)
					out = append(out, e)
				}
				return rows.Err()
			}, `SELECT chain, seq, part, event_id, event_type, event_key, payload, created_at
				FROM outbox_events WHERE part = $1 ORDER BY part, chain, seq LIMIT $2`, part, limit)
			return nil // pipelined sends the read with BEGIN and COMMIT
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading outbox partition %d: %w", part, err)
	}
	return out, nil
}

// MarkOutboxPublished marks events of a partition published by deleting
// them, in a SERIALIZABLE transaction that first updates owner's lease row
// on the condition that owner still holds an unexpired lease on part: a
// concurrent takeover conflicts with it, so either the delete commits under
// the lease or nothing is deleted and ErrLeaseLost is returned. It returns
// how many rows it deleted (a key no longer there, published by another
// relay, counts nothing).
func (s *Store) MarkOutboxPublished(ctx context.Context, owner string, part int, refs []settlement.OutboxRef) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	chains, seqs := make([]string, len(refs)), make([]int64, len(refs))
	for i, k := range refs {
		chains[i], seqs[i] = k.Chain, k.Seq
	}
	var n int
	// Two round trips: BEGIN with the lease's update, whose outcome decides
	// the rest, then the mark with COMMIT.
	err := s.Update(ctx, func(ctx context.Context, stx settlement.Tx) error {
		t := stx.(*tx)
		held := false
		t.queue(func(tag pgconn.CommandTag, err error) error {
			held = err == nil && tag.RowsAffected() == 1
			return err
		}, `UPDATE outbox_leases SET expires_at = expires_at
			WHERE part = $1 AND owner = $2 AND expires_at > now()`, part, owner)
		if err := t.flush(ctx); err != nil {
			return err
		}
		if !held {
			return settlement.ErrLeaseLost
		}
		// Each key a primary-key lookup: the part with a (chain, seq) pair
		// of the two arrays, unnested side by side.
		t.queue(func(tag pgconn.CommandTag, err error) error {
			n = int(tag.RowsAffected())
			return err
		}, `DELETE FROM outbox_events
			WHERE part = $1 AND (chain, seq) IN (SELECT * FROM unnest($2::TEXT[], $3::INT8[]))`, part, chains, seqs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("marking %d events of outbox partition %d published: %w", len(refs), part, err)
	}
	return n, nil
}

// ReleaseOutbox gives up owner's leases and its place among the live
// relays, so that the others take its partitions over at once instead of
// after the leases expire. A relay calls it when it stops.
func (s *Store) ReleaseOutbox(ctx context.Context, owner string) error {
	err := s.txn(ctx, serializable, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM outbox_leases WHERE owner = $1`, owner); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM outbox_relays WHERE owner = $1`, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("releasing the outbox leases of %s: %w", owner, err)
	}
	return nil
}

// OutboxLeases returns the lease table, by partition.
func (s *Store) OutboxLeases(ctx context.Context) ([]OutboxLease, error) {
	rows, err := s.pool.Query(ctx, `SELECT part, owner, expires_at, expires_at > now() FROM outbox_leases ORDER BY part`)
	if err != nil {
		return nil, fmt.Errorf("reading outbox leases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxLease, error) {
		var l OutboxLease
		err := r.Scan(&l.Part, &l.Owner, &l.ExpiresAt, &l.Live)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading outbox leases: %w", err)
	}
	return out, nil
}

// OutboxBacklog is the number of events not yet published.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the outbox backlog: %w", err)
	}
	return n, nil
}
