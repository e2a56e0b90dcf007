// Package console is the insurance bureau's web console: server-rendered
// pages (html/template, inline SVG charts, no JavaScript) over the settlement
// data of one pooling region, and the monthly statement written as files by
// `medsettle report`.
//
// Every page is scoped to the region of the bureau that is signed in: a
// settlement is the bureau's when the person is insured there
// (insuplc_admdvs) or the institution is there (mdtrtarea_admvs). The data
// comes through settlement.BureauReads, the read model the domain declares
// and adapters/postgres implements.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// Reconciler compares an institution's HIS figures with the platform's
// (3201/3202); *settlement.Engine is one.
type Reconciler interface {
	ReconcileTotals(ctx context.Context, q settlement.PeriodQuery, his settlement.Totals) (settlement.TotalsResult, error)
	ReconcileDetails(ctx context.Context, q settlement.PeriodQuery, his []settlement.DetailRow) ([]settlement.Difference, error)
}

//go:embed templates/*.html static/*
var assets embed.FS

// Config wires a console.
type Config struct {
	Reader settlement.BureauReads
	// Reconciler runs 3201/3202 for the reconciliation page; nil disables it.
	Reconciler Reconciler
	// Keys are the API keys: only bureau keys (bureau:<admdvs>) open the console.
	Keys *settlement.Keys
	// Rules name institutions and regions and tell which institutions are a
	// region's; nil shows codes only and disables reconciliation.
	Rules *rules.RuleSet
	// Province is the province of this platform ("" when it serves every
	// region): its clearing and advance funds are shown to its bureaus.
	Province string
	// Now is the clock (time.Now when nil): "today" and session expiry.
	Now func() time.Time
	// Secret signs login sessions (HMAC-SHA256), at least 32 bytes. When
	// empty a random one is made: sessions then end with the process.
	Secret []byte
	// Prefix is where the console is mounted (default "/console").
	Prefix string
	// Secure marks the session cookie Secure (set when serving TLS).
	Secure bool
	// SessionTTL is how long a login lasts (default 8 hours).
	SessionTTL time.Duration
	Log        *slog.Logger
}

// Handler serves the console under Config.Prefix.
type Handler struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	audit auditRunner
}

// New returns the console's handler. Mount it at Prefix+"/" (it serves
// Prefix itself by redirecting to Prefix+"/").
func New(cfg Config) (*Handler, error) {
	if cfg.Reader == nil || cfg.Keys == nil {
		return nil, errors.New("console: Reader and Keys are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/console"
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	switch {
	case len(cfg.Secret) == 0:
		cfg.Secret = make([]byte, 32)
		_, _ = rand.Read(cfg.Secret)
	case len(cfg.Secret) < 32:
		return nil, errors.New("console: the session secret must have at least 32 bytes")
	}
	h := &Handler{cfg: cfg, pages: map[string]*template.Template{}}
	h.audit.reader = cfg.Reader
	h.audit.now = cfg.Now
	h.audit.log = cfg.Log
	for _, name := range []string{"login", "dashboard", "settlements", "settlement", "reconcile", "clearing", "audit", "alerts", "error"} {
		t, err := template.New("").Funcs(h.funcs()).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	p := cfg.Prefix
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+p+"/login", h.loginForm)
	mux.HandleFunc("POST "+p+"/login", h.login)
	mux.HandleFunc("POST "+p+"/logout", h.logout)
	mux.Handle("GET "+p+"/{$}", h.auth(h.dashboard))
	mux.Handle("GET "+p+"/settlements", h.auth(h.settlements))
	mux.Handle("GET "+p+"/settlements/{id}", h.auth(h.settlement))
	mux.Handle("GET "+p+"/reconcile", h.auth(h.reconcileForm))
	mux.Handle("POST "+p+"/reconcile", h.auth(h.reconcile))
	mux.Handle("GET "+p+"/clearing", h.auth(h.clearing))
	mux.Handle("GET "+p+"/audit", h.auth(h.auditPage))
	mux.Handle("POST "+p+"/audit", h.auth(h.auditRun))
	mux.Handle("GET "+p+"/statement", h.auth(h.statement))
	mux.Handle("GET "+p+"/alerts", h.auth(h.alerts))
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
	})
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, nil, http.StatusNotFound, "no such page")
	})
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// No script runs, nothing is framed, forms post only here.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, h.cfg.Prefix+"/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost {
		if !sameOrigin(r) {
			http.Error(w, "cross-origin form posts are refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a POST whose Origin (or, failing that, Sec-Fetch-Site)
// says it came from another site.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// viewer is the bureau a request acts for.
type viewer struct {
	Region string
	// CSRF is the form token of a cookie session ("" for a bearer key,
	// which a browser never sends by itself).
	CSRF   string
	Cookie bool
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v viewer)

// auth lets a request through with a bureau key (Authorization: Bearer) or
// a signed login session; otherwise nothing of the page is rendered.
func (h *Handler) auth(next pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authz := r.Header.Get("Authorization"); authz != "" {
			key, ok := strings.CutPrefix(authz, "Bearer ")
			who, known := h.cfg.Keys.Lookup(strings.TrimSpace(key))
			switch {
			case !ok || !known:
				w.Header().Set("WWW-Authenticate", `Bearer realm="medsettle console"`)
				http.Error(w, "a valid bureau key is required", http.StatusUnauthorized)
			case !who.IsBureau():
				http.Error(w, "the console is for the insurance bureau: an institution key does not open it", http.StatusForbidden)
			default:
				next(w, r, viewer{Region: who.Region})
			}
			return
		}
		if c, err := r.Cookie(cookieName); err == nil {
			if s, ok := h.openSession(c.Value); ok {
				v := viewer{Region: s.Region, CSRF: h.csrfToken(c.Value), Cookie: true}
				if r.Method == http.MethodPost {
					_ = r.ParseMultipartForm(1 << 20)
					if !h.csrfOK(c.Value, r.PostFormValue("csrf")) {
						http.Error(w, "the form is stale: reload the page and try again", http.StatusForbidden)
						return
					}
				}
				next(w, r, v)
				return
			}
		}
		if r.Method == http.MethodGet {
			http.Redirect(w, r, h.cfg.Prefix+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.Error(w, "sign in with a bureau key", http.StatusUnauthorized)
	})
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	Prefix   string
	Region   string
	CSRF     string
	Cookie   bool
	Now      time.Time
	Province string
	Data     any
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, v viewer, status int, name, title string, data any) {
	var buf strings.Builder
	p := page{Title: title, Nav: name, Prefix: h.cfg.Prefix, Region: v.Region, CSRF: v.CSRF, Cookie: v.Cookie,
		Now: h.cfg.Now(), Province: h.cfg.Province, Data: data}
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.cfg.Log.Error("console: rendering", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// fail renders an error page; err (when set) is logged, never shown.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, status int, msg string) {
	if err != nil {
		h.cfg.Log.Error("console", "path", r.URL.Path, "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "the database did not answer in time"
		}
	}
	h.render(w, r, viewer{}, status, "error", "Error", msg)
}

// auditRunner runs Store.Audit in the background and keeps the last result.
type auditRunner struct {
	reader settlement.BureauReads
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	running bool
	started time.Time
	done    chan struct{}
	last    *auditResult
}

type auditResult struct {
	Report   *settlement.AuditReport
	Err      string
	Started  time.Time
	Duration time.Duration
	By       string
}

// start runs an audit unless one is running, and returns a channel closed when it ends.
func (a *auditRunner) start(by string) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		return a.done
	}
	a.running, a.started, a.done = true, a.now(), make(chan struct{})
	done, started := a.done, a.started
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		t0 := time.Now()
		rep, err := a.reader.Audit(ctx)
		res := &auditResult{Report: rep, Started: started, Duration: time.Since(t0), By: by}
		if err != nil {
			a.log.Error("console: audit", "err", err)
			res.Err = "the audit could not run to the end (see the server log)"
		}
		a.mu.Lock()
		a.running, a.last = false, res
		a.mu.Unlock()
		close(done)
	}()
	return done
}

func (a *auditRunner) state() (bool, time.Time, *auditResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running, a.started, a.last
}

// WarmUp sums, for every pooling region of the rules, the closed days since
// `since` into the day totals that dashboards and statements read (see
// Reader.ConsoleTotals), so that no bureau's first view of a month waits for
// them. Days already summed are skipped.
func (h *Handler) WarmUp(ctx context.Context, since time.Time) error {
	if h.cfg.Rules == nil {
		return nil
	}
	closed := h.closedBefore()
	if !since.Before(closed) {
		return nil
	}
	regions := make([]string, 0, len(h.cfg.Rules.Regions))
	for r := range h.cfg.Rules.Regions {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, r := range regions {
		if _, err := h.cfg.Reader.ConsoleTotals(ctx, r, since, closed, closed); err != nil {
			return err
		}
	}
	return nil
}

// KeepWarm runs WarmUp over the last 400 days at once and then every hour,
// until ctx ends.
func (h *Handler) KeepWarm(ctx context.Context) {
	for {
		t0 := time.Now()
		since := h.closedBefore().AddDate(0, 0, -400)
		if err := h.WarmUp(ctx, since); err != nil && ctx.Err() == nil {
			h.cfg.Log.Warn("console: summing closed days", "err", err)
		} else if ctx.Err() == nil {
			h.cfg.Log.Debug("console: closed days summed", "took", time.Since(t0))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}
