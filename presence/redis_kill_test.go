package presence

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

// The bounds of TestRedisKilledInstance's instances. Short by default; run
// with the service's defaults to measure them:
//
//	go test -count=1 -run TestRedisKilledInstance -v ./presence/ -presence.heartbeat=5s -presence.lapse=15s
var (
	killHeartbeat = flag.Duration("presence.heartbeat", 100*time.Millisecond, "heartbeat of TestRedisKilledInstance's instances")
	killLapse     = flag.Duration("presence.lapse", 400*time.Millisecond, "lapse of TestRedisKilledInstance's instances")
)

// helperEnv carries the killed instance's configuration to the process
// that plays it (TestKilledInstanceProcess).
const helperEnv = "PRESENCE_TEST_KILLED_INSTANCE"

type helperConfig struct {
	Addr      string
	Prefix    string
	Heartbeat time.Duration
	Lapse     time.Duration
	Joins     []helperJoin
}

type helperJoin struct{ Channel, Conn, User string }

// TestRedisKilledInstance kills an instance with SIGKILL, a process of its
// own, no Leave ever coming: the two surviving instances must remove its
// members within Lapse + Heartbeat and report each exactly once between
// them, and keep the member it shared with them.
func TestRedisKilledInstance(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	client := srv.Client()
	prefix := hostilePrefix()
	heartbeat, lapse := *killHeartbeat, *killLapse
	opts := RedisOptions{Prefix: prefix, Heartbeat: heartbeat, Lapse: lapse}
	b, c := NewRedis(client, opts), NewRedis(client, opts)
	// Small batches, so both sweepers take turns on the dead instance.
	b.sweepBatch, c.sweepBatch = 3, 3
	rec := newRecorder()
	stopB := run(t, b, rec.events("b"))
	stopC := run(t, c, rec.events("c"))
	join(t, b, "presence-room", "1.1", Member{UserID: "bob"})

	cfg := helperConfig{Addr: srv.Addr(), Prefix: string(prefix), Heartbeat: heartbeat, Lapse: lapse}
	var want []removal
	for i := range 30 {
		user := fmt.Sprint("user", i)
		cfg.Joins = append(cfg.Joins, helperJoin{"presence-room", fmt.Sprintf("9.%d", i), user})
		want = append(want, removal{"presence-room", user})
	}
	cfg.Joins = append(cfg.Joins,
		helperJoin{"presence-hall", "9.100", "ann"}, // ann in two channels
		helperJoin{"presence-room", "9.100", "ann"},
		helperJoin{"presence-room", "9.101", "bob"}) // bob's other tab: bob stays
	want = append(want, removal{"presence-hall", "ann"}, removal{"presence-room", "ann"})

	victim := startKilledInstance(t, cfg)
	is.Equal(len(members(t, b, "presence-room")), 32)
	// Kill it once its Run has renewed its deadline, as a running
	// instance's would be.
	first, err := client.ZRangeWithScores(t.Context(), prefix.Key("presence", "instances"), 0, -1).Result()
	is.NoErr(err)
	waitRenewed(t, client, prefix, first)
	is.NoErr(victim.Process.Kill())
	killed := time.Now()
	_ = victim.Wait()

	bound := lapse + heartbeat
	rec.waitFor(t, bound+10*time.Second, "the killed instance's members reported", func() bool {
		return len(rec.sorted()) >= len(want)
	})
	var last time.Time
	byB := 0
	for _, r := range rec.all() {
		if r.at.After(last) {
			last = r.at
		}
		if r.by == "b" {
			byB++
		}
	}
	took := last.Sub(killed)
	t.Logf("%d members of the killed instance reported removed %s after SIGKILL (b %d, c %d), heartbeat %s, lapse %s, bound %s",
		len(want), took.Round(time.Millisecond), byB, len(want)-byB, heartbeat, lapse, bound)
	// A loaded machine may delay a beat a little past the bound.
	is.True(took <= bound+time.Second)
	is.Equal(members(t, c, "presence-room"), []Member{{UserID: "bob"}})
	is.Equal(members(t, c, "presence-hall"), []Member{})

	// Every report is in once b and c have stopped (b's stop reports Bob):
	// each member of the killed instance exactly once across both.
	is.NoErr(stopB())
	is.NoErr(stopC())
	want = append(want, removal{"presence-room", "bob"})
	slices.SortFunc(want, compareRemovals)
	is.Equal(rec.sorted(), want)
}

// startKilledInstance runs TestKilledInstanceProcess in a process of its
// own and returns once its joins are recorded.
func startKilledInstance(t *testing.T, cfg helperConfig) *exec.Cmd {
	t.Helper()
	spec, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledInstanceProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	// A test killed mid-run must not leave its instance behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if lines.Text() == "ready" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("the instance's process ended its output without being ready: %v", lines.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the instance's process was not ready within 30s")
	}
	return cmd
}

// waitRenewed waits until each of the three instances has renewed its
// deadline since before: the killed one's Run is running then.
func waitRenewed(t *testing.T, client *redis.Client, prefix redisconn.Prefix, before []redis.Z) {
	t.Helper()
	old := map[string]float64{}
	for _, z := range before {
		old[z.Member.(string)] = z.Score
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		now, err := client.ZRangeWithScores(t.Context(), prefix.Key("presence", "instances"), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		for _, z := range now {
			if s, ok := old[z.Member.(string)]; ok && s != z.Score {
				moved++
			}
		}
		if len(now) == 3 && moved == 3 {
			return
		}
		time.Sleep(*killHeartbeat / 5)
	}
	t.Fatal("the instances' deadlines were not renewed within 30s")
}

// TestKilledInstanceProcess is the instance TestRedisKilledInstance kills:
// it runs only in the process that test starts. It records its joins, says
// "ready" and runs until killed.
func TestKilledInstanceProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("the instance TestRedisKilledInstance starts and kills")
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: cfg.Addr})
	s := NewRedis(client, RedisOptions{Prefix: redisconn.Prefix(cfg.Prefix), Heartbeat: cfg.Heartbeat, Lapse: cfg.Lapse})
	for _, j := range cfg.Joins {
		if _, _, err := s.Join(context.Background(), j.Channel, j.Conn, Member{UserID: j.User}); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	// Until SIGKILL: nothing after this runs.
	_ = s.Run(context.Background(), Events{})
	t.Fatal("Run returned in a process that should have been killed")
}
