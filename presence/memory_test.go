package presence

import (
	"testing"

	"github.com/matryer/is"
)

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, maxMembers int) Store { return NewMemory(maxMembers) })
}

func TestMemoryForgetsEmptiedChannels(t *testing.T) {
	is := is.New(t)
	m := NewMemory(0)
	join(t, m, "presence-a", "1.1", Member{UserID: "ann"})
	join(t, m, "presence-b", "1.1", Member{UserID: "ann"})
	leave(t, m, "presence-a", "1.1")
	is.Equal(len(m.channels), 1) // a channel nobody is in costs nothing
}
