package auth

// ChannelAllowed reports whether channel matches one of patterns. In a
// pattern, * stands for any run of characters, the empty run and dots
// included: "orders.*" allows "orders.1" and "orders.eu.1" but not
// "orders"; "*" allows every channel. Every other character matches
// itself. No patterns allow nothing.
func ChannelAllowed(patterns []string, channel string) bool {
	for _, p := range patterns {
		if match(p, channel) {
			return true
		}
	}
	return false
}

// match is glob matching with * only. On a mismatch it backtracks to the
// last * and lets it swallow one more character; earlier stars never need
// revisiting, so the cost is O(len(p)·len(s)) at worst, without recursion a
// hostile pattern could deepen.
func match(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
