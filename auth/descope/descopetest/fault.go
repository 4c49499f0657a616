package descopetest

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// Fault is a failure the key set or metadata endpoints can be told to show,
// for testing how clients cope with an identity provider in trouble.
type Fault int

// The faults an endpoint can show.
const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultUnavailable answers 503 Service Unavailable with a short body.
	FaultUnavailable
	// FaultGarbage answers 200 OK with an HTML body that is not JSON.
	FaultGarbage
	// FaultEmpty answers 200 OK with an empty document: {"keys":[]} for
	// the key set, {} for metadata.
	FaultEmpty
	// FaultHang holds the request without answering until the client gives
	// up or the server is closed; [Server.Close] aborts such requests.
	FaultHang
)

// String returns the name of the fault, such as "FaultHang".
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "FaultNone"
	case FaultUnavailable:
		return "FaultUnavailable"
	case FaultGarbage:
		return "FaultGarbage"
	case FaultEmpty:
		return "FaultEmpty"
	case FaultHang:
		return "FaultHang"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// SetJWKSFault makes the key set endpoints show fault f from the next
// request on; FaultNone restores normal answers.
func (s *Server) SetJWKSFault(f Fault) { s.jwksFault.Store(int64(f)) }

// SetJWKSDelay makes the key set endpoints wait d before answering; 0 (or
// less) answers at once. A waiting request ends early when its client gives
// up or the server is closed.
func (s *Server) SetJWKSDelay(d time.Duration) { s.jwksDelay.Store(int64(d)) }

// SetMetadataFault makes all metadata (discovery) endpoints, for both
// issuers, show fault f from the next request on; FaultNone restores normal
// answers.
func (s *Server) SetMetadataFault(f Fault) { s.metadataFault.Store(int64(f)) }

// SetMetadataDelay makes the metadata endpoints wait d before answering, like
// [Server.SetJWKSDelay].
func (s *Server) SetMetadataDelay(d time.Duration) { s.metadataDelay.Store(int64(d)) }

// JWKSRequests returns how many requests the key set endpoints have received,
// including those that failed or were abandoned.
func (s *Server) JWKSRequests() int64 { return s.jwksRequests.Load() }

// MetadataRequests returns how many requests the metadata endpoints have
// received, including those that failed or were abandoned.
func (s *Server) MetadataRequests() int64 { return s.metadataRequests.Load() }

// pause waits d nanoseconds before a handler answers. It reports false if the
// client gave up meanwhile; if the server is closing, it aborts the request.
func (s *Server) pause(r *http.Request, d int64) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(time.Duration(d))
	defer t.Stop()
	s.notifyWaiting()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		panic(http.ErrAbortHandler)
	}
}

// serveFault answers the request according to fault f and reports whether it
// did; for FaultNone it does nothing. empty is the body for FaultEmpty.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault, empty string) bool {
	switch f {
	case FaultUnavailable:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "descopetest: service unavailable\n")
	case FaultGarbage:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "<html>oops</html>\n")
	case FaultEmpty:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, empty)
	case FaultHang:
		s.notifyWaiting()
		select {
		case <-r.Context().Done():
		case <-s.closing:
			// Abort rather than answer, so the client sees the
			// connection drop, as with a server that went away.
			panic(http.ErrAbortHandler)
		}
	default:
		return false
	}
	return true
}
