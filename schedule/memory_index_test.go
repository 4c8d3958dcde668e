package schedule

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/matryer/is"
)

// TestPlaces checks the index against a sorted slice through thousands of
// random adds and removes (many chunk splits and emptied chunks), with
// times drawn from a few milliseconds so ids often decide.
func TestPlaces(t *testing.T) {
	is := is.New(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var p places
	var want []Cursor
	for i := range 20_000 {
		if len(want) > 0 && rng.IntN(3) == 0 {
			c := want[rng.IntN(len(want))]
			p.remove(c)
			want = slices.DeleteFunc(want, func(w Cursor) bool { return w == c })
		} else {
			c := Cursor{At: rng.Int64N(8), ID: strconv.Itoa(rng.IntN(1 << 30))}
			if slices.Contains(want, c) {
				continue
			}
			p.add(c)
			want = append(want, c)
			slices.SortFunc(want, compareCursors)
		}
		p.remove(Cursor{At: 99, ID: "absent"}) // changes nothing
		if i%500 != 0 {
			continue
		}
		is.Equal(p.Len(), len(want))
		is.Equal(collect(&p, Cursor{}), want)
		// From a place that is there, and from one that is not.
		if len(want) > 0 {
			k := rng.IntN(len(want))
			is.Equal(collect(&p, want[k]), want[k+1:])
			gap := Cursor{At: want[k].At, ID: want[k].ID + "~"}
			is.Equal(collect(&p, gap), slices.DeleteFunc(slices.Clone(want), func(w Cursor) bool { return compareCursors(w, gap) <= 0 }))
		}
	}
	is.True(len(p.chunks) > 1) // the test went past one chunk
}

func collect(p *places, after Cursor) []Cursor {
	out := []Cursor{}
	p.after(after, func(c Cursor) bool {
		out = append(out, c)
		return true
	})
	return out
}
