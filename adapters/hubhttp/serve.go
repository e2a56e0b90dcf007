package hubhttp

import "time"

// WriteTimeout is how long the hub's listener may take to answer a province,
// given its PeerTimeout and the hold of an injected delay fault: a duplicate
// delivery calls the insured province twice, and a dropped answer waits for
// the province before answering, so the counter interface's 30 s would cut
// answers the hub owes. `medsettle hub` runs the listener with it
// (adapters/httpserve), and after the shutdown's drain waits for the
// deliveries a delay fault still holds (Server.Wait).
func WriteTimeout(peerTimeout, delay time.Duration) time.Duration {
	return 2*peerTimeout + delay + 5*time.Second
}
