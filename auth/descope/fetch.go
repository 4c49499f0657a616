package descope

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// errTooLarge marks a response over its size cap.
var errTooLarge = errors.New("response larger than the size cap")

// fetchLimited GETs url and returns its body when the status is 200 and
// the body is at most maxBytes long. The request ends when ctx does.
func fetchLimited(ctx context.Context, client *http.Client, url string, maxBytes int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("GET %s: %w (%d bytes)", url, errTooLarge, maxBytes)
	}
	return body, nil
}

// refresher runs a refresh function at most once at a time: callers that
// arrive while one runs join it instead of starting another. Every run gets
// its own timeout and is cut short by Close, never by a caller going away.
type refresher struct {
	run     func(ctx context.Context) error
	timeout time.Duration
	life    context.Context
	onWait  func() // test hook: a fresh caller has settled on its run

	mu       sync.Mutex
	inflight *fetchRun
	next     *fetchRun // queued behind inflight, for callers of fresh
	started  time.Time // when the last run started
}

// fetchRun is one run of the refresh function.
type fetchRun struct {
	done chan struct{} // closed when the run has ended
	err  error         // the run's result, set before done closes
}

func newRefresher(life context.Context, timeout time.Duration, run func(context.Context) error) *refresher {
	return &refresher{run: run, timeout: timeout, life: life}
}

// start begins a run unless one is in flight (then it returns that one) or
// the last run started less than minGap ago (then it returns nil).
func (r *refresher) start(minGap time.Duration) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight.done
	}
	if minGap > 0 && !r.started.IsZero() && time.Since(r.started) < minGap {
		return nil
	}
	run := &fetchRun{done: make(chan struct{})}
	r.launchLocked(run)
	return run.done
}

// launchLocked starts run; r.mu is held. When the run ends, the run queued
// behind it, if any, starts at once.
func (r *refresher) launchLocked(run *fetchRun) {
	r.inflight = run
	r.started = time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(r.life, r.timeout)
		run.err = r.run(ctx) // the run also reports its own failures
		cancel()
		r.mu.Lock()
		r.inflight = nil
		if next := r.next; next != nil {
			r.next = nil
			r.launchLocked(next)
		}
		r.mu.Unlock()
		close(run.done)
	}()
}

// wait starts or joins a run (see start) and waits for it to end, or for ctx
// to end. It reports whether a run ended while it waited.
func (r *refresher) wait(ctx context.Context, minGap time.Duration) bool {
	done := r.start(minGap)
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// fresh waits for a run that starts after it was called and returns that
// run's error, or ctx's error if ctx ends first. A run in flight may have
// read the old state, so fresh does not settle for it: it queues one run
// to start when that one ends, which every caller of fresh arriving
// meanwhile shares. It ignores minGap.
func (r *refresher) fresh(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	run := r.next
	switch {
	case r.inflight == nil:
		run = &fetchRun{done: make(chan struct{})}
		r.launchLocked(run)
	case run == nil:
		run = &fetchRun{done: make(chan struct{})}
		r.next = run
	}
	r.mu.Unlock()
	if r.onWait != nil {
		r.onWait()
	}
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
