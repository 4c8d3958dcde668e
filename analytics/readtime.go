package analytics

import (
	"math"
	"slices"
	"time"
)

// Time to read is kept as a histogram, never as a list of reads, so a day
// of a type costs at most maxBucket+1 counters however many reads it has.
// Bucket 0 holds reads within a second of the notification; bucket b ≥ 1
// holds [2^((b-1)/8), 2^(b/8)) seconds: eight buckets per doubling, so a
// bucket spans a factor of 2^(1/8) ≈ 1.09. The median is reported as the
// geometric middle of the bucket the median read falls in, which is within
// a factor 2^(1/16) of the true median: at most 4.4% off (MedianError),
// and at most half a second off below one second.
const (
	bucketsPerDoubling = 8
	// maxBucket holds 2^24.9 s and beyond, 366 days: longer than any
	// retention keeps a day.
	maxBucket = 200
)

// MedianError is the largest relative error of Counts.MedianTimeToRead for
// reads of a second or more.
var MedianError = math.Pow(2, 1.0/(2*bucketsPerDoubling)) - 1

// Histogram counts reads by bucket of time to read.
type Histogram map[int]int64

// bucketOf is the bucket of a time to read.
func bucketOf(d time.Duration) int {
	s := d.Seconds()
	if s < 1 {
		return 0
	}
	b := 1 + int(math.Floor(bucketsPerDoubling*math.Log2(s)))
	return min(b, maxBucket)
}

// bucketMiddle is what a read in bucket b is reported as.
func bucketMiddle(b int) time.Duration {
	if b == 0 {
		return 500 * time.Millisecond
	}
	s := math.Pow(2, (float64(b)-0.5)/bucketsPerDoubling)
	return time.Duration(s * float64(time.Second))
}

// add adds o's counts to h.
func (h Histogram) add(o Histogram) {
	for b, n := range o {
		h[b] += n
	}
}

// median is the estimate of the median time to read (the lower median: the
// ⌈n/2⌉-th read), and false when there is no read.
func (h Histogram) median() (time.Duration, bool) {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	buckets := make([]int, 0, len(h))
	for b := range h {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	rank := (total + 1) / 2
	var seen int64
	for _, b := range buckets {
		seen += h[b]
		if seen >= rank {
			return bucketMiddle(b), true
		}
	}
	return bucketMiddle(buckets[len(buckets)-1]), true
}
