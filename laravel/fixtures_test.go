package laravel_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/internal/redistest"
)

var update = flag.Bool("update", false, "capture testdata/*.json again from the real Laravel in e2e/laravel")

// fixture is what a real Laravel published for one scenario: every message
// its RedisBroadcaster's EVAL published, as a PSUBSCRIBE received it.
type fixture struct {
	Comment  string    `json:"comment"`
	Args     []string  `json:"args"`
	Prefix   string    `json:"prefix"`
	Messages []message `json:"messages"`
}

type message struct {
	Channel string `json:"channel"`
	Payload string `json:"payload"`
}

// scenarios are e2e/laravel/broadcast.php's, by fixture name.
var scenarios = []struct {
	name string
	args []string
}{
	{"a-tarea-creada", []string{"tarea-creada"}},
	{"b-multi-channel", []string{"multi-channel"}},
	{"c-empty-payload", []string{"empty-payload"}},
	{"d-to-others", []string{"to-others", "1234.5678"}},
	{"e-notification", []string{"notification", "42"}},
	{"f-notification-socket", []string{"notification-socket", "42"}},
}

const laravelPrefix = "laravel_database_"

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatalf("fixture %s: %v (capture with: go test ./laravel -run TestCaptureFixtures -update)", name, err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return f
}

// TestCaptureFixtures records, with -update, what the real Laravel
// publishes for each scenario. Without -update it checks that every
// fixture is there.
func TestCaptureFixtures(t *testing.T) {
	if !*update {
		for _, sc := range scenarios {
			loadFixture(t, sc.name)
		}
		return
	}
	srv := redistest.Start(t, redistest.Options{})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			is := is.New(t)
			msgs := captureLaravel(t, srv.Addr(), laravelPrefix, sc.args...)
			f := fixture{
				Comment: "Published by Laravel 8 (Debian's php-laravel-framework) with its redis broadcaster: " +
					"php e2e/laravel/broadcast.php " + strings.Join(sc.args, " ") +
					", received by PSUBSCRIBE " + laravelPrefix + "*. Captured by go test ./laravel -run TestCaptureFixtures -update.",
				Args: sc.args, Prefix: laravelPrefix, Messages: msgs,
			}
			b, err := json.MarshalIndent(f, "", "  ")
			is.NoErr(err)
			is.NoErr(os.WriteFile(filepath.Join("testdata", sc.name+".json"), append(b, '\n'), 0o644))
		})
	}
}

// captureLaravel runs one scenario against the Redis at addr and returns
// what a PSUBSCRIBE on the prefix received.
func captureLaravel(t *testing.T, addr, prefix string, args ...string) []message {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	ps := c.PSubscribe(ctx, prefix+"*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatalf("psubscribe: %v", err)
	}
	runLaravel(t, addr, prefix, args...)
	// PHP returns once Redis has answered its EVAL, which published every
	// message before answering: they are all on their way. A PING's
	// answer comes after them on this connection.
	is.New(t).NoErr(ps.Ping(ctx))
	var msgs []message
	for {
		m, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		switch m := m.(type) {
		case *redis.Message:
			msgs = append(msgs, message{Channel: m.Channel, Payload: m.Payload})
		case *redis.Pong:
			return msgs
		}
	}
}

// runLaravel runs php e2e/laravel/broadcast.php with args against the
// Redis at addr.
func runLaravel(t *testing.T, addr, prefix string, args ...string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "e2e", "laravel", "broadcast.php")
	cmd := exec.Command("php", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "REDIS_HOST="+host, "REDIS_PORT="+port, "LARAVEL_REDIS_PREFIX="+prefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("php %s: %v\n%s(scripts/test installs php-cli php-laravel-framework php-predis)", strings.Join(args, " "), err, out)
	}
}
