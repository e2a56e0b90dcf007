package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunServesUntilCancelledThenDrains(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "done")
	})
	s := Platform("127.0.0.1:0", h)
	urls := make(chan string, 1)
	s.Listening = func(url string) { urls <- url }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, log, s) }()
	url := <-urls

	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(b)
	}()
	time.Sleep(100 * time.Millisecond) // the request is in flight
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned before the request in flight was answered: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.Equal(t, "done", <-answer, "the request in flight is answered")
	require.NoError(t, <-done)
}

func TestRunRefusesAnAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	free := Platform("127.0.0.1:0", http.NotFoundHandler())
	taken := Platform(ln.Addr().String(), http.NotFoundHandler())
	err = Run(context.Background(), log, free, taken)
	require.ErrorContains(t, err, "listening on "+ln.Addr().String())
}
