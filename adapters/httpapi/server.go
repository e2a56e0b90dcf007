package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Server serves the counter interface, health and metrics.
type Server struct {
	Engine *settlement.Engine
	Keys   *settlement.Keys
	Log    *slog.Logger
	// Ready reports whether dependencies (the database) answer; nil means ready.
	Ready func(ctx context.Context) error
	// Timeout bounds one transaction's handling (default 10 s).
	Timeout time.Duration
	// Registry receives the server's metrics (a new one when nil).
	Registry *prometheus.Registry
	// Alerts serves GET /bureau/alerts (the fund-supervision monitor's alerts); nil: 503.
	Alerts AlertQuery

	metrics *metrics
	mux     *http.ServeMux
}

// Handler returns the HTTP handler; call once after setting the fields.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Timeout == 0 {
		s.Timeout = 10 * time.Second
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.Registry)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST "+Path, s.callService)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET "+AlertsPath, s.bureauAlerts)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	return s.mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			s.Log.Warn("not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = io.WriteString(w, "ready\n")
}

// call is one request in flight.
type call struct {
	env  *fsi.Envelope
	who  settlement.Principal
	msg  settlement.Msg
	ctx  context.Context
	warn string
}

func (s *Server) callService(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ans := fsi.Answer{InfRefmsgid: refmsgid(start), RefmsgTime: start.In(rules.CST).Format(timeLayout + ".000")}
	infno := "unknown"
	status := http.StatusOK
	defer func() {
		ans.RespondTime = time.Now().In(rules.CST).Format(timeLayout + ".000")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(ans)
		s.metrics.observe(infno, ans.Infcode, time.Since(start))
	}()

	// Authentication comes first: nothing of an unauthenticated body is read.
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	who, known := s.Keys.Lookup(strings.TrimSpace(key))
	if !ok || !known {
		status, ans.Infcode, ans.ErrMsg = http.StatusUnauthorized, -1, "Authorization: a valid Bearer API key is required"
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			status, ans.Infcode, ans.ErrMsg = http.StatusRequestEntityTooLarge, -1, "request body larger than "+strconv.Itoa(maxBody)+" bytes"
			return
		}
		status, ans.Infcode, ans.ErrMsg = http.StatusBadRequest, -1, "reading request body failed"
		return
	}
	env, err := decodeEnvelope(body)
	if err != nil {
		ans.Infcode, ans.ErrMsg = -1, err.Error()
		return
	}
	infno = env.Infno
	h, known := handlers[env.Infno]
	if !known {
		infno = "unknown"
		ans.Infcode, ans.ErrMsg = -1, "infno "+quote(env.Infno)+" is not a transaction this platform serves"
		return
	}
	if err := s.authorize(who, env, h); err != nil {
		ans.Infcode, ans.ErrMsg = -1, err.Error()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.Timeout)
	defer cancel()
	c := &call{env: env, who: who, ctx: ctx, msg: settlement.Msg{ID: env.Msgid, Infno: env.Infno,
		Institution: env.FixmedinsCode, Digest: digest(env)}}
	out, err := h.fn(s, c)
	ans.WarnMsg = c.warn
	if err == nil {
		// Marshalled here rather than by the encoder, so that Answer is one
		// type for the server and the client (Output is raw JSON).
		if ans.Output, err = json.Marshal(out); err != nil {
			err = fmt.Errorf("encoding the output of %s: %w", env.Infno, err)
		}
	}
	if err != nil {
		ans.Infcode = -1
		ans.ErrMsg, ans.ErrCode = s.errMsg(c, err)
		s.Log.LogAttrs(ctx, slog.LevelInfo, "refused", slog.String("infno", env.Infno), slog.String("msgid", env.Msgid),
			slog.String("fixmedins_code", env.FixmedinsCode), slog.String("err_msg", ans.ErrMsg),
			slog.Int64("ms", time.Since(start).Milliseconds()))
		return
	}
	// The line of every transaction; LogAttrs, not Info: no boxing of the
	// values into a []any and back.
	s.Log.LogAttrs(ctx, slog.LevelInfo, "served", slog.String("infno", env.Infno), slog.String("msgid", env.Msgid),
		slog.String("fixmedins_code", env.FixmedinsCode), slog.Int64("ms", time.Since(start).Milliseconds()))
}

// errMsg turns an error into err_msg and err_code: refusals are shown,
// internal errors are logged with their detail and shown only as a
// reference, with the code fsi.ErrCodeOutcomeUnknown.
func (s *Server) errMsg(c *call, err error) (msg, code string) {
	var rf *refusal
	if errors.As(err, &rf) {
		return rf.Msg, ""
	}
	if settlement.ErrorCode(err) != settlement.EINTERNAL {
		return settlement.ErrorMessage(err), ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.Log.Error("timed out", "infno", c.env.Infno, "msgid", c.env.Msgid, "err", err)
		return "the platform did not finish in time; the outcome is unknown: reverse msgid " + c.env.Msgid + " with 2601", fsi.ErrCodeOutcomeUnknown
	}
	s.Log.Error("internal error", "infno", c.env.Infno, "msgid", c.env.Msgid, "err", err)
	return "internal error (msgid " + c.env.Msgid + "); the outcome is unknown: reverse it with 2601", fsi.ErrCodeOutcomeUnknown
}

// authorize scopes a principal: an institution acts only as itself; a
// bureau reads, for its own region only.
func (s *Server) authorize(who settlement.Principal, env *fsi.Envelope, h handler) error {
	if p := s.Engine.Province; p != "" {
		// A province's platform serves the institutions of its province.
		if inst := s.Engine.Rules.Institutions[env.FixmedinsCode]; inst != nil && s.Engine.Rules.Province(inst.Admdvs) != p {
			return refuse("fixmedins_code %s is an institution of province %s; this is the platform of province %s",
				env.FixmedinsCode, s.Engine.Rules.Province(inst.Admdvs), p)
		}
	}
	if !who.IsBureau() {
		if who.Institution != env.FixmedinsCode {
			return refuse("fixmedins_code %s is not the institution of this API key", env.FixmedinsCode)
		}
		if h.bureauOnly {
			return refuse("infno %s is for the bureau", env.Infno)
		}
		return nil
	}
	if !h.bureau {
		return refuse("infno %s is not open to a bureau key", env.Infno)
	}
	if h.person {
		return nil // checked against the person's insured region by the handler
	}
	inst := s.Engine.Rules.Institutions[env.FixmedinsCode]
	if inst == nil || inst.Admdvs != who.Region {
		return refuse("fixmedins_code %s is not an institution of region %s", env.FixmedinsCode, who.Region)
	}
	return nil
}

// now is the engine's clock, so that the dates a handler derives (a person's
// age, the default year of 5206) agree with the engine's own.
func (s *Server) now() time.Time {
	if s.Engine != nil && s.Engine.Now != nil {
		return s.Engine.Now()
	}
	return time.Now()
}

func refmsgid(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return t.In(rules.CST).Format("20060102150405") + hex.EncodeToString(b[:])
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
