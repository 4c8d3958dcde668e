package main

import (
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestTallyCountsDuplicatesAndStrays(t *testing.T) {
	is := is.New(t)
	tl := newTally(3)
	is.True(tl.record(0, 10))
	is.True(tl.record(2, 20))
	is.True(!tl.record(0, 30)) // a duplicate keeps the first receipt
	is.True(!tl.record(3, 40)) // out of range
	is.True(!tl.record(-1, 40))
	is.Equal(tl.at, []int64{10, 0, 20})
	is.Equal(tl.dup, 1)
	is.Equal(tl.stray, 2)
}

func TestReceiverCountsItsRunsMessagesOnly(t *testing.T) {
	is := is.New(t)
	rec := newReceiver("ab12cd", time.Now())
	s := &stream{got: newTally(50)}
	rec.onNotification(s, []byte(`{"event":"notification","cursor":"x-1","title":"`+title("ab12cd", 42)+`","message":"m"}`))
	rec.onNotification(s, []byte(`{"event":"notification","title":"`+title("ffffff", 7)+`"}`)) // another run's
	is.Equal(rec.fresh.Load(), int64(1))
	is.True(s.got.at[42] != 0)
	is.Equal(s.got.at[7], int64(0))
}
