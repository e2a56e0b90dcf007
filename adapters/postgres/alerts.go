package postgres

// The fund-supervision monitor's storage (monitor.Store) and the bureau's
// read side of its alerts (httpapi.AlertQuery), in migration 0003's tables:
//
//   - monitor_events: every observed settlement event, per person in the
//     order observed. The monitor's state is a cache rebuilt from it (see
//     monitor.Store), so neither a restart, a rebalance nor the settlements
//     topic's retention loses a person's history.
//   - alerts: one row per alert id (alerts are deterministic, so raising one
//     again is a no-op), also the outbox of the alerts topic (published_at).
//   - alert_regions: the regions each alert concerns, for the bureau's query.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/settlement"
)

// AlertStore is the monitor's storage on a Store's database.
type AlertStore struct {
	s *Store
	// Now is the clock of observed_at and created_at (time.Now when nil).
	Now func() time.Time
}

var _ monitor.Store = (*AlertStore)(nil)

// NewAlertStore returns the monitor's storage on s's database (migrated).
func NewAlertStore(s *Store) *AlertStore { return &AlertStore{s: s} }

func (a *AlertStore) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// alertTx runs fn in one SERIALIZABLE transaction retried whole (Store.txn).
func (a *AlertStore) alertTx(ctx context.Context, fn func(ctx context.Context, ptx pgx.Tx) error) error {
	return a.s.txn(ctx, serializable, fn)
}

// History implements monitor.Store.
func (a *AlertStore) History(ctx context.Context, psnNo string, after int) ([]settlement.SettlementEvent, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT seq, payload FROM monitor_events WHERE psn_no = $1 AND seq > $2 ORDER BY seq`, psnNo, after)
	if err != nil {
		return nil, fmt.Errorf("reading the monitor history of %s: %w", psnNo, err)
	}
	defer rows.Close()
	var out []settlement.SettlementEvent
	for rows.Next() {
		var seq int
		var payload string
		if err := rows.Scan(&seq, &payload); err != nil {
			return nil, fmt.Errorf("reading the monitor history of %s: %w", psnNo, err)
		}
		if seq != after+len(out)+1 {
			return nil, fmt.Errorf("monitor history of %s: seq %d follows %d", psnNo, seq, after+len(out))
		}
		var ev settlement.SettlementEvent
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return nil, fmt.Errorf("monitor history of %s, seq %d: %w", psnNo, seq, err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Record implements monitor.Store: the event is inserted only if it is the
// seq-th of its person (seqs are gapless from 1, so the last is seq-1) and
// its id is new, and its alerts with it, in one transaction.
func (a *AlertStore) Record(ctx context.Context, seq int, ev settlement.SettlementEvent, alerts []monitor.Alert) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	rows := make([]alertRow, len(alerts))
	for i := range alerts {
		if rows[i], err = toAlertRow(&alerts[i]); err != nil {
			return err
		}
	}
	now := a.now()
	// Two round trips, as a settlement's: BEGIN with the event's insert,
	// whose outcome decides the rest, then the alerts with COMMIT.
	return a.s.Update(ctx, func(ctx context.Context, stx settlement.Tx) error {
		t := stx.(*tx)
		recorded := false
		t.queue(func(tag pgconn.CommandTag, err error) error {
			if err != nil {
				return fmt.Errorf("recording event %s: %w", ev.EventID, err)
			}
			recorded = tag.RowsAffected() == 1
			return nil
		}, `INSERT INTO monitor_events (psn_no, seq, event_id, payload, observed_at)
			SELECT $1::TEXT, $2::INT, $3::TEXT, $4::TEXT, $5::TIMESTAMPTZ
			WHERE (SELECT COALESCE(max(seq), 0) FROM monitor_events WHERE psn_no = $1::TEXT) = $2::INT - 1
			ON CONFLICT DO NOTHING`, ev.PsnNo, seq, ev.EventID, string(payload), now)
		if err := t.flush(ctx); err != nil {
			return err
		}
		if !recorded {
			var n int
			if err := t.queryRow(ctx, `SELECT count(*) FROM monitor_events WHERE event_id = $1`, ev.EventID).Scan(&n); err != nil {
				return fmt.Errorf("recording event %s: %w", ev.EventID, err)
			}
			if n > 0 {
				return monitor.ErrObserved
			}
			return monitor.ErrStale
		}
		for i := range rows {
			rows[i].queue(t, ev.EventID, now)
		}
		return nil
	})
}

// alertRow is an alert as stored.
type alertRow struct {
	a        *monitor.Alert
	regions  string
	evidence string
}

func toAlertRow(a *monitor.Alert) (alertRow, error) {
	regions := a.Regions
	if regions == nil {
		regions = []string{}
	}
	r, err := json.Marshal(regions)
	if err != nil {
		return alertRow{}, err
	}
	e, err := json.Marshal(a.Settlements)
	if err != nil {
		return alertRow{}, err
	}
	return alertRow{a: a, regions: string(r), evidence: string(e)}, nil
}

// queue queues the alert's rows in t.
func (r *alertRow) queue(t *tx, eventID string, now time.Time) {
	a := r.a
	t.queue(wrapErr("storing alert %s", a.ID), `INSERT INTO alerts (alert_id, rule, psn_no, insuplc_admdvs, regions, evidence, detail,
		raised_at, event_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (alert_id) DO NOTHING`,
		a.ID, string(a.Rule), a.PsnNo, a.InsuredRegion, r.regions, r.evidence, a.Detail, a.At, eventID, now)
	for _, region := range a.Scope() {
		t.queue(wrapErr("storing alert %s", a.ID), `INSERT INTO alert_regions (admdvs, raised_at, alert_id) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, region, a.At, a.ID)
	}
}

const alertCols = `a.alert_id, a.rule, a.psn_no, a.insuplc_admdvs, a.regions, a.evidence, a.detail, a.raised_at`

func scanAlerts(rows pgx.Rows) ([]monitor.Alert, error) {
	defer rows.Close()
	out := []monitor.Alert{}
	for rows.Next() {
		var a monitor.Alert
		var rule, regions, evidence string
		if err := rows.Scan(&a.ID, &rule, &a.PsnNo, &a.InsuredRegion, &regions, &evidence, &a.Detail, &a.At); err != nil {
			return nil, fmt.Errorf("reading alerts: %w", err)
		}
		a.Rule, a.At = monitor.Rule(rule), a.At.UTC()
		if err := json.Unmarshal([]byte(regions), &a.Regions); err != nil {
			return nil, fmt.Errorf("stored regions of alert %s: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(evidence), &a.Settlements); err != nil {
			return nil, fmt.Errorf("stored evidence of alert %s: %w", a.ID, err)
		}
		a.Evidence = make([]string, len(a.Settlements))
		for i, s := range a.Settlements {
			a.Evidence[i] = s.SetlID
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Unpublished implements monitor.Store.
func (a *AlertStore) Unpublished(ctx context.Context, limit int) ([]monitor.Alert, error) {
	rows, err := a.s.pool.Query(ctx, `SELECT `+alertCols+` FROM alerts a WHERE a.published_at IS NULL
		ORDER BY a.created_at, a.alert_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading unpublished alerts: %w", err)
	}
	return scanAlerts(rows)
}

// MarkPublished implements monitor.Store.
func (a *AlertStore) MarkPublished(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := a.now()
	return a.alertTx(ctx, func(ctx context.Context, ptx pgx.Tx) error {
		_, err := ptx.Exec(ctx, `UPDATE alerts SET published_at = $2 WHERE alert_id = ANY($1) AND published_at IS NULL`, ids, now)
		if err != nil {
			return fmt.Errorf("marking alerts published: %w", err)
		}
		return nil
	})
}

// Bounds of an open-ended raised_at range.
var (
	alertsMin = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	alertsMax = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Alerts returns the stored alerts q selects, by raised_at then alert_id
// (httpapi.AlertQuery). With a region it is a range scan of alert_regions.
func (a *AlertStore) Alerts(ctx context.Context, q monitor.Query) ([]monitor.Alert, error) {
	from, to := q.From, q.To
	if from.IsZero() {
		from = alertsMin
	}
	if to.IsZero() {
		to = alertsMax
	}
	var rows pgx.Rows
	var err error
	if q.Region != "" {
		rows, err = a.s.pool.Query(ctx, `SELECT `+alertCols+` FROM alert_regions r JOIN alerts a ON a.alert_id = r.alert_id
			WHERE r.admdvs = $1 AND r.raised_at >= $2 AND r.raised_at < $3 AND ($4 = '' OR a.rule = $4) AND ($5 = '' OR a.psn_no = $5)
			ORDER BY r.raised_at, r.alert_id LIMIT $6`, q.Region, from, to, string(q.Rule), q.PsnNo, q.EffectiveLimit())
	} else {
		rows, err = a.s.pool.Query(ctx, `SELECT `+alertCols+` FROM alerts a
			WHERE a.raised_at >= $1 AND a.raised_at < $2 AND ($3 = '' OR a.rule = $3) AND ($4 = '' OR a.psn_no = $4)
			ORDER BY a.raised_at, a.alert_id LIMIT $5`, from, to, string(q.Rule), q.PsnNo, q.EffectiveLimit())
	}
	if err != nil {
		return nil, fmt.Errorf("querying alerts: %w", err)
	}
	return scanAlerts(rows)
}
