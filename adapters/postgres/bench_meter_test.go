package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/medsettle/medsettle/adapters/postgres"
)

// What BenchmarkSettle measures besides time: WAL written, and the CPU
// used by this process and by the cluster's processes.

// walBytes is the cluster's WAL written so far (pg_stat_wal, PostgreSQL 14
// and later; 0 where there is none, as on CockroachDB). The WAL a settlement
// writes is a cost it carries wherever the database runs, and one that
// timing noise does not blur.
func walBytes(ctx context.Context, st *postgres.Store) int64 {
	var n int64
	if st.Pool().QueryRow(ctx, `SELECT wal_bytes::INT8 FROM pg_stat_wal`).Scan(&n) != nil {
		return 0
	}
	return n
}

// clientCPU is the CPU time this process has used.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU samples the CPU time of the cluster's processes (children of the
// postmaster, read from /proc) while a measurement runs. Sampling every
// 100ms keeps the time of backends that exit before the end (pgbench's),
// minus their last interval. It measures nothing when the server is not a
// local process (DATABASE_URL elsewhere).
type serverCPU struct {
	postmaster int
	mu         sync.Mutex
	base, last map[int]int64 // ticks by pid
	stopc      chan struct{}
	done       chan struct{}
}

func newServerCPU(ctx context.Context, st *postgres.Store) *serverCPU {
	s := &serverCPU{}
	var pid int
	if st.Pool().QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid) != nil {
		return s
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return s
	}
	if ppid, _, ok := procStat(pid); ok {
		s.postmaster = ppid
	}
	return s
}

// procStat returns a process's parent and its user+system CPU ticks.
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command may contain spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, ut + stt, true
}

func (s *serverCPU) sample() map[int]int64 {
	out := map[int]int64{}
	if s.postmaster == 0 {
		return out
	}
	if _, t, ok := procStat(s.postmaster); ok {
		out[s.postmaster] = t
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, t, ok := procStat(pid); ok && ppid == s.postmaster {
			out[pid] = t
		}
	}
	return out
}

func (s *serverCPU) start() {
	if s.postmaster == 0 {
		return
	}
	s.base = s.sample()
	s.last = map[int]int64{}
	s.stopc, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			m := s.sample()
			s.mu.Lock()
			for pid, t := range m {
				s.last[pid] = t
			}
			s.mu.Unlock()
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
}

// stop returns the CPU time the server used since start (0 when unknown).
func (s *serverCPU) stop() time.Duration {
	if s.postmaster == 0 {
		return 0
	}
	close(s.stopc)
	<-s.done
	for pid, t := range s.sample() {
		s.last[pid] = t
	}
	var ticks int64
	for pid, t := range s.last {
		ticks += t - s.base[pid] // a pid new since start has base 0
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ is 100 on Linux
}
