package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replicaLoadWorkers is how many requests are in flight at once, each
// worker on its own keep-alive connection to nginx.
const replicaLoadWorkers = 16

// BenchmarkReplicas measures tools/call whoami through nginx in front of
// one replica of the example and in front of three, in both eras (a
// 2025-11-25 session per worker, opened before the clock starts), and
// reports, beside requests per second, the CPU each request cost the
// replicas, nginx and this process (the load generator), read from
// /proc/PID/stat. Everything shares the machine's CPUs, so on a small
// machine three replicas cannot be faster than one: the numbers say where
// the CPU goes, not how far the fleet scales.
//
//	cd e2e && go test -run '^$' -bench '^BenchmarkReplicas$' -benchtime 3s .
func BenchmarkReplicas(b *testing.B) {
	for _, n := range []int{1, 3} {
		f := newFleet(b, n)
		for _, era := range []string{eraModern, eraLegacy} {
			b.Run(fmt.Sprintf("replicas=%d/%s", n, era), func(b *testing.B) { f.load(b, era) })
		}
	}
}

// load sends b.N tool calls through nginx from replicaLoadWorkers workers.
func (f *fleet) load(b *testing.B, era string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	token := f.ds.Mint(map[string]any{"scope": fleetScopeRead + " " + fleetScopeWrite})
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: replicaLoadWorkers,
		MaxConnsPerHost:     replicaLoadWorkers,
	}}
	defer hc.CloseIdleConnections()

	calls := make([]rawCall, replicaLoadWorkers)
	for i := range calls {
		calls[i] = rawCall{url: f.mcpURL, token: token, protocol: era, body: rawWhoamiBody}
		if era == eraModern {
			calls[i].headers, calls[i].body = rawWhoamiModernHeaders, rawWhoamiModernBody
			continue
		}
		a, err := rawCall{url: f.mcpURL, token: token, protocol: era, body: rawInitializeBody}.send(ctx, hc)
		if err != nil || a.status != http.StatusOK {
			b.Fatalf("initialize: %d %v: %s", a.status, err, a.body)
		}
		calls[i].session = a.header.Get("Mcp-Session-Id")
	}

	before := f.cpu(b)
	b.ResetTimer()
	start := time.Now()
	var next, failed atomic.Int64
	var firstErr sync.Once
	var failure string
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				a, err := c.send(ctx, hc)
				if err != nil || a.status != http.StatusOK {
					failed.Add(1)
					firstErr.Do(func() { failure = fmt.Sprintf("%d %v: %s", a.status, err, a.body) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	after := f.cpu(b)
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d calls failed; the first: %s", n, b.N, failure)
	}

	perCall := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(perCall(after.replicas-before.replicas), "replica-cpu-µs/req")
	b.ReportMetric(perCall(after.nginx-before.nginx), "nginx-cpu-µs/req")
	b.ReportMetric(perCall(after.client-before.client), "client-cpu-µs/req")
}

// fleetCPU is the CPU time used so far by the replicas together, by nginx
// (master and workers) and by this process.
type fleetCPU struct {
	replicas, nginx, client time.Duration
}

func (f *fleet) cpu(b *testing.B) fleetCPU {
	b.Helper()
	var c fleetCPU
	for _, r := range f.replicas {
		d, err := procCPUTime(r.cmd.Process.Pid, false)
		if err != nil {
			b.Fatalf("CPU time of %s: %v", f.name(r.addr), err)
		}
		c.replicas += d
	}
	var err error
	if c.nginx, err = procCPUTime(f.lb.pid(), true); err != nil {
		b.Fatalf("CPU time of nginx: %v", err)
	}
	if c.client, err = procCPUTime(os.Getpid(), false); err != nil {
		b.Fatalf("CPU time of the load generator: %v", err)
	}
	return c
}
