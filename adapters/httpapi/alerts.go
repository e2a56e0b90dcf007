package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/medsettle/medsettle/monitor"
	"github.com/medsettle/medsettle/rules"
)

// AlertQuery is the read side of the fund-supervision monitor's alerts
// (adapters/postgres.AlertStore implements it).
type AlertQuery interface {
	// Alerts returns the stored alerts q selects, by raised_at then alert_id.
	Alerts(ctx context.Context, q monitor.Query) ([]monitor.Alert, error)
}

// AlertsPath is the bureau's alerts endpoint.
const AlertsPath = "/bureau/alerts"

// AlertsAnswer is the answer of GET /bureau/alerts.
type AlertsAnswer struct {
	Region string          `json:"region"`
	Alerts []monitor.Alert `json:"alerts"`
}

// alertsError is the answer of a refused GET /bureau/alerts.
type alertsError struct {
	Error string `json:"error"`
}

// bureauAlerts is GET /bureau/alerts?rule=&psn_no=&from=&to=&limit=, for a
// bureau key only: the alerts of persons insured in the bureau's region and
// the alerts involving an institution of its region, each with its evidence
// (the settlements involved). from and to are dates (yyyy-mm-dd at the
// counter, to included) or RFC 3339 times (to excluded) bounding raised_at.
func (s *Server) bureauAlerts(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	who, known := s.Keys.Lookup(strings.TrimSpace(key))
	switch {
	case !ok || !known:
		w.Header().Set("WWW-Authenticate", `Bearer realm="medsettle"`)
		writeAlertsJSON(w, http.StatusUnauthorized, alertsError{"Authorization: a valid Bearer API key is required"})
		return
	case !who.IsBureau():
		writeAlertsJSON(w, http.StatusForbidden, alertsError{"GET " + AlertsPath + " is for a bureau key; this key is institution " + who.Institution + "'s"})
		return
	case s.Alerts == nil:
		writeAlertsJSON(w, http.StatusServiceUnavailable, alertsError{"the fund-supervision alerts are not served here"})
		return
	}
	q, err := alertsQuery(r.URL.Query(), who.Region)
	if err != nil {
		writeAlertsJSON(w, http.StatusBadRequest, alertsError{err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.Timeout)
	defer cancel()
	alerts, err := s.Alerts.Alerts(ctx, q)
	if err != nil {
		s.Log.Error("querying alerts", "region", who.Region, "err", err)
		writeAlertsJSON(w, http.StatusInternalServerError, alertsError{"internal error reading the alerts"})
		return
	}
	if alerts == nil {
		alerts = []monitor.Alert{}
	}
	s.Log.Info("served", "path", AlertsPath, "principal", who.String(), "alerts", len(alerts))
	writeAlertsJSON(w, http.StatusOK, AlertsAnswer{Region: who.Region, Alerts: alerts})
}

// alertsQuery reads the query parameters.
func alertsQuery(v url.Values, region string) (monitor.Query, error) {
	q := monitor.Query{Region: region, Rule: monitor.Rule(v.Get("rule")), PsnNo: strings.TrimSpace(v.Get("psn_no"))}
	if q.Rule != "" && !q.Rule.Valid() {
		names := make([]string, len(monitor.Rules))
		for i, r := range monitor.Rules {
			names[i] = string(r)
		}
		return q, fmt.Errorf("rule %q: want one of %s", q.Rule, strings.Join(names, ", "))
	}
	var err error
	if q.From, err = alertsTime("from", v.Get("from"), false); err != nil {
		return q, err
	}
	if q.To, err = alertsTime("to", v.Get("to"), true); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, fmt.Errorf("from %s is not before to %s", v.Get("from"), v.Get("to"))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > monitor.MaxLimit {
			return q, fmt.Errorf("limit %q: want 1 to %d", l, monitor.MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// alertsTime parses a date at the counter (an upper bound includes the
// whole day) or an RFC 3339 time; empty is zero (unbounded).
func alertsTime(name, s string, upper bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseInLocation("2006-01-02", s, rules.CST); err == nil {
		if upper {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want yyyy-mm-dd or an RFC 3339 time", name, s)
	}
	return t, nil
}

func writeAlertsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
