package schedule

import (
	"slices"
	"sort"
)

// places is a set of Cursors in listing order, kept as a list of sorted
// chunks: adding, removing and finding a place cost O(log n) plus a copy
// within one chunk, so Memory can list a page without reading every item
// while it holds its lock. A Cursor's ID is unique, so no two places are
// equal.
type places struct {
	chunks [][]Cursor
	n      int
}

// chunkMax bounds a chunk: a full one is split in two.
const chunkMax = 512

// Len is the number of places.
func (p *places) Len() int { return p.n }

// find returns the chunk holding the first place not before c, and its
// index there; ci is len(p.chunks) when every place is before c.
func (p *places) find(c Cursor) (ci, i int) {
	ci = sort.Search(len(p.chunks), func(j int) bool {
		chunk := p.chunks[j]
		return compareCursors(chunk[len(chunk)-1], c) >= 0
	})
	if ci < len(p.chunks) {
		i = sort.Search(len(p.chunks[ci]), func(j int) bool { return compareCursors(p.chunks[ci][j], c) >= 0 })
	}
	return ci, i
}

func (p *places) add(c Cursor) {
	p.n++
	if len(p.chunks) == 0 {
		p.chunks = [][]Cursor{{c}}
		return
	}
	ci, i := p.find(c)
	if ci == len(p.chunks) { // after every place
		ci = len(p.chunks) - 1
		i = len(p.chunks[ci])
	}
	chunk := slices.Insert(p.chunks[ci], i, c)
	if len(chunk) <= chunkMax {
		p.chunks[ci] = chunk
		return
	}
	half := len(chunk) / 2
	right := slices.Clone(chunk[half:])
	clear(chunk[half:]) // let go of the ids the left half no longer holds
	p.chunks[ci] = chunk[:half]
	p.chunks = slices.Insert(p.chunks, ci+1, right)
}

func (p *places) remove(c Cursor) {
	ci, i := p.find(c)
	if ci == len(p.chunks) || p.chunks[ci][i] != c {
		return
	}
	p.n--
	chunk := slices.Delete(p.chunks[ci], i, i+1)
	if len(chunk) == 0 {
		p.chunks = slices.Delete(p.chunks, ci, ci+1)
		return
	}
	p.chunks[ci] = chunk
}

// after calls yield with each place after c (every place when c is zero),
// in order, until yield returns false.
func (p *places) after(c Cursor, yield func(Cursor) bool) {
	ci, i := 0, 0
	if !c.IsZero() {
		ci, i = p.find(c)
		if ci < len(p.chunks) && p.chunks[ci][i] == c {
			i++
		}
	}
	for ; ci < len(p.chunks); ci, i = ci+1, 0 {
		for _, pl := range p.chunks[ci][i:] {
			if !yield(pl) {
				return
			}
		}
	}
}
