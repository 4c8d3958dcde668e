package audit

import (
	"log/slog"
	"testing"
)

// BenchmarkTrailOffer is what every audit record pays for the live trail
// once the second's sample is full (the common case under load): a lock
// and a count.
func BenchmarkTrailOffer(b *testing.B) {
	t := NewTrail(NewMemoryTrail(0), TrailOptions{})
	attrs := []slog.Attr{slog.String("notification_id", "n"), slog.String("user_id", "u"), slog.Int("connections", 3)}
	for b.Loop() {
		t.Offer("delivery", attrs)
		if len(t.pending) > 1000 {
			t.pending = t.pending[:0]
		}
	}
}
