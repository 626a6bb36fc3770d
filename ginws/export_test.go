package ginws

// BadTransitions returns how many state changes the connections of s asked for that the state
// machine does not allow (conn_state.go); every test server checks it is zero when it stops.
func BadTransitions(s *Server) uint64 { return s.badTransitions.Load() }

// PumpIdleTimeout is how long an idle pump worker waits for work before it exits (pumps.go):
// tests that count goroutines wait that long first.
const PumpIdleTimeout = pumpIdleTimeout

// Relayed returns how many relay events the connections of s queued without a handler call
// (relay.go's fast path).
func Relayed(s *Server) uint64 { return s.relayed.Load() }
