package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Snapshot is a reading of this instance's own counters, for the
// dashboard's once-a-second report (instances.Sample has the same fields).
type Snapshot struct {
	// Connections counts live streams by transport.
	Connections   map[string]int
	Accepted      uint64
	Deliveries    uint64
	DroppedFrames uint64
	// SlowConsumers counts streams closed because their queue overflowed.
	SlowConsumers uint64
	// LatencyBounds are the delivery latency buckets' upper bounds in
	// seconds, LatencyCounts the cumulative count at each, then the total.
	LatencyBounds []float64
	LatencyCounts []uint64
}

// Snapshot reads the counters the dashboard shows. It walks a few dozen
// series, so it belongs on a ticker, never on a delivery path.
func (m *Metrics) Snapshot() Snapshot {
	s := Snapshot{Connections: make(map[string]int)}
	each(m.connections, func(d *dto.Metric) {
		if t := label(d, "transport"); t != "" {
			s.Connections[t] = int(d.GetGauge().GetValue())
		}
	})
	each(m.deliveries, func(d *dto.Metric) { s.Deliveries += uint64(d.GetCounter().GetValue()) })
	each(m.disconnects, func(d *dto.Metric) {
		if label(d, "reason") == "slow_consumer" {
			s.SlowConsumers += uint64(d.GetCounter().GetValue())
		}
	})
	for _, c := range m.accepted {
		each(c, func(d *dto.Metric) { s.Accepted += uint64(d.GetCounter().GetValue()) })
	}
	each(m.dropped, func(d *dto.Metric) { s.DroppedFrames = uint64(d.GetCounter().GetValue()) })
	each(m.latency, func(d *dto.Metric) {
		h := d.GetHistogram()
		for _, b := range h.GetBucket() {
			s.LatencyBounds = append(s.LatencyBounds, b.GetUpperBound())
			s.LatencyCounts = append(s.LatencyCounts, b.GetCumulativeCount())
		}
		s.LatencyCounts = append(s.LatencyCounts, h.GetSampleCount())
	})
	return s
}

// each calls fn with every series c collects.
func each(c prometheus.Collector, fn func(*dto.Metric)) {
	ch := make(chan prometheus.Metric)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			var d dto.Metric
			if m.Write(&d) == nil {
				fn(&d)
			}
		}
	}()
	c.Collect(ch)
	close(ch)
	<-done
}

func label(d *dto.Metric, name string) string {
	for _, l := range d.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
