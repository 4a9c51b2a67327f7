package clustertest

// Elected reports whether a controller-runtime manager leads now: it has
// won the leader election (or runs without one).
func Elected(cm interface{ Elected() <-chan struct{} }) bool {
	select {
	case <-cm.Elected():
		return true
	default:
		return false
	}
}
