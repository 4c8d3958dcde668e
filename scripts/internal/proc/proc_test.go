package proc

import (
	"os"
	"testing"

	"github.com/matryer/is"
)

func TestParseCPUTicks(t *testing.T) {
	is := is.New(t)
	// The command name may hold spaces and parentheses.
	stat := "4242 (notif (x) svc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 9 0 100 1000000 500 18446744073709551615"
	ticks, err := ParseCPUTicks([]byte(stat))
	is.NoErr(err)
	is.Equal(ticks, int64(175))
	_, err = ParseCPUTicks([]byte("garbage"))
	is.True(err != nil)
}

func TestOwnProcess(t *testing.T) {
	is := is.New(t)
	_, err := CPUTicks(os.Getpid())
	is.NoErr(err)
	is.True(LoadAverage()[0] >= 0)
	run, _, err := SchedTimes(os.Getpid())
	is.NoErr(err)
	is.True(run > 0) // this test has run
}

func TestOpenFiles(t *testing.T) {
	is := is.New(t)
	before, err := OpenFiles(os.Getpid())
	is.NoErr(err)
	// More than one batch of Readdirnames, so the count spans batches.
	const extra = 1500
	for range extra {
		f, err := os.Open(os.DevNull)
		is.NoErr(err)
		t.Cleanup(func() { f.Close() })
	}
	after, err := OpenFiles(os.Getpid())
	is.NoErr(err)
	is.Equal(after-before, extra)
	_, err = OpenFiles(-1)
	is.True(err != nil)
}
