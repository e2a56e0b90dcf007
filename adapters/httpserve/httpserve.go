// Package httpserve runs the project's HTTP listeners: the counter interface
// (with the console and the hub's peer endpoints in front of it), the
// national hub, and net/http/pprof. It owns what every one of them needs the
// same way: the listener, the time-outs, TLS, and a graceful shutdown when the
// process is told to stop. What is served is an http.Handler from the other
// adapters (httpapi, console, hubhttp); cmd/medsettle composes them and hands
// them over, so this package imports none of them.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// DrainTimeout is how long a shutdown waits for the requests in flight.
const DrainTimeout = 20 * time.Second

// Server is one listener. Zero time-outs mean what they mean to net/http
// (none; an idle connection then waits ReadTimeout); Platform fills in the
// counter interface's.
type Server struct {
	Addr    string
	Handler http.Handler
	// TLSCert and TLSKey are PEM files; both empty: plain HTTP.
	TLSCert, TLSKey string

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// Listening is called once the listener is open, with its URL
	// (scheme://host:port), e.g. to print where the server is.
	Listening func(url string)
}

// Platform is a listener with the counter interface's time-outs: a slow
// client cannot hold a connection past them, and a transaction (10 s at most
// in httpapi) has time to be written back.
func Platform(addr string, h http.Handler) *Server {
	return &Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
}

// Run serves every server until ctx ends or one of them fails, then drains
// the requests in flight of all of them (DrainTimeout at most). A failure to
// listen stops before anything serves. Errors are logged and returned.
func Run(ctx context.Context, log *slog.Logger, servers ...*Server) error {
	lns := make([]net.Listener, 0, len(servers))
	defer func() {
		for _, ln := range lns {
			_ = ln.Close() // closed already when served; these are the unserved ones
		}
	}()
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			log.Error("listen", "addr", s.Addr, "err", err)
			return fmt.Errorf("listening on %s: %w", s.Addr, err)
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(servers))
	hss := make([]*http.Server, len(servers))
	for i, s := range servers {
		hss[i] = s.start(lns[i], log, errc)
	}
	lns = nil
	var err error
	select {
	case err = <-errc:
		log.Error("serve", "err", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	for _, hs := range hss {
		if serr := hs.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			log.Error("shutdown", "err", serr)
			err = errors.Join(err, fmt.Errorf("shutting down %s: %w", hs.Addr, serr))
		}
	}
	return err
}

// start serves s on ln in the background; a failure arrives on errc.
func (s *Server) start(ln net.Listener, log *slog.Logger, errc chan<- error) *http.Server {
	hs := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           s.Handler,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if s.TLSCert != "" {
		scheme = "https"
	}
	if s.Listening != nil {
		s.Listening(scheme + "://" + ln.Addr().String())
	}
	go func() {
		var err error
		if s.TLSCert != "" {
			err = hs.ServeTLS(ln, s.TLSCert, s.TLSKey)
		} else {
			err = hs.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving on %s: %w", s.Addr, err)
		}
	}()
	return hs
}

// StartPprof serves net/http/pprof on its own listener (never on the counter
// interface's), so a running server can be profiled:
//
//	go tool pprof -top http://ADDR/debug/pprof/profile?seconds=20
//
// addr "" serves nothing. The returned stop closes the listener at once:
// a profile in progress is of no use once the process stops.
func StartPprof(addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = hs.Close() }, nil
}
