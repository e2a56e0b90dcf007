package kafka_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/medsettle/medsettle/adapters/kafka"
	"github.com/medsettle/medsettle/settlement"
)

// BenchmarkRelay measures the relay end to end: outbox rows made by real
// settlements (MEDSETTLE_RELAY_BENCH_EVENTS of them, 5,000 by default),
// read from PostgreSQL, produced to the in-process broker with acks=all and
// marked published (deleted). Each iteration puts the same rows back and
// times one relay (default configuration) from start until it marked them
// all; events/s is the figure.
//
//	go test ./adapters/kafka/ -run '^$' -bench BenchmarkRelay -benchtime 5x
func BenchmarkRelay(b *testing.B) {
	events := 5000
	if v := os.Getenv("MEDSETTLE_RELAY_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		events = n
	}
	e := newEnv(b)
	ctx := context.Background()
	events = prefill(b, e, events)
	_, err := e.store.Pool().Exec(ctx, `CREATE TABLE outbox_bench AS SELECT * FROM outbox_events`)
	require.NoError(b, err)
	var total int64
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// The same rows again, fresh (the previous iteration deleted them;
		// the first finds them still there).
		_, err := e.store.Pool().Exec(ctx, `TRUNCATE outbox_events`)
		require.NoError(b, err)
		_, err = e.store.Pool().Exec(ctx, `INSERT INTO outbox_events SELECT * FROM outbox_bench`)
		require.NoError(b, err)
		r, err := kafka.NewRelay(e.store, e.opts(), kafka.RelayConfig{Owner: fmt.Sprintf("bench-%d", i), Log: quietLog()})
		require.NoError(b, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		began := time.Now()
		go func() { done <- r.Run(rctx) }()
		for r.Stats().Marked < int64(events) {
			time.Sleep(time.Millisecond)
		}
		elapsed += time.Since(began)
		b.StopTimer()
		total += r.Stats().Marked
		cancel()
		require.NoError(b, <-done)
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
}

// prefill settles manual claims over the 120 persons until the outbox
// holds n events (a few more when the workers overshoot), and says how many.
func prefill(b *testing.B, e *env, n int) int {
	b.Helper()
	ctx := context.Background()
	claims := e.makeClaims(9, n*2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	made := 0
	jobs := make(chan *testClaim)
	for range 8 {
		wg.Go(func() {
			for c := range jobs {
				if c.kind != kValid {
					continue
				}
				var mc settlement.ManualClaim
				require.NoError(b, jsonUnmarshal(c.value, &mc))
				_, err := e.engine.ManualSettle(ctx, mc)
				if err == nil {
					mu.Lock()
					made++
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range claims {
		mu.Lock()
		enough := made >= n
		mu.Unlock()
		if enough {
			break
		}
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	ids, _ := e.outboxIDs(b)
	require.Len(b, ids, made)
	require.GreaterOrEqual(b, made, n)
	return made
}
