package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/redis/go-redis/v9"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

// TestRedisLimitsAcrossInstances adds at once from three instances, each
// with its own connections: together they store exactly the bound, since
// the script checks and adds in one step.
func TestRedisLimitsAcrossInstances(t *testing.T) {
	is := is.New(t)
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	var scheds []*Redis
	for range 3 {
		s := newRedis(t, srv, "bounds:")
		s.limits = Limits{PerUser: 5}
		scheds = append(scheds, s)
	}
	added, refused := addAtOnce(t, 21, func(i int) error {
		return scheds[i%3].Add(t.Context(), newItem(broker.Now().Add(time.Hour), "alice"))
	})
	for _, err := range refused {
		is.True(errors.Is(err, ErrUserLimit))
	}
	is.Equal(added, 5)
	is.Equal(len(listAll(t, scheds[0], "alice")), 5)
}

// TestRedisListsItemsOfOlderVersion stores items as a version without the
// listing index (sched:at) did, and leaves an entry behind as such a
// version's forget would: Prepare indexes the items, and a listing drops
// the entry.
func TestRedisListsItemsOfOlderVersion(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion})
	admin := srv.Client()
	const prefix = "upgrade:"
	s := newRedis(t, srv, prefix)
	now := broker.Now()
	var want []Item
	for i := range 3 {
		it := newItem(now.Add(time.Duration(i+1)*time.Hour), "alice")
		if i == 1 {
			it = newItem(it.ScheduledAt) // a broadcast: no user index lists it
		}
		want = append(want, it)
		is.NoErr(s.Add(ctx, it))
	}
	at := prefix + "sched:at"
	is.NoErr(admin.Del(ctx, at).Err())
	// Gone but for an older version's leftover, ahead of everything.
	is.NoErr(admin.ZAdd(ctx, at, redis.Z{Score: float64(now.UnixMilli()), Member: "forgotten"}).Err())
	is.Equal(len(listAll(t, s, "")), 0) // not indexed

	upgraded := newRedis(t, srv, prefix) // Prepare indexes them
	is.Equal(listAll(t, upgraded, ""), want)
	is.Equal(listAll(t, upgraded, "alice"), []Item{want[0], want[2]})
	_, err := admin.ZScore(ctx, at, "forgotten").Result()
	is.True(err != nil) // dropped by the listing
	n, err := admin.ZCard(ctx, at).Result()
	is.NoErr(err)
	is.Equal(n, int64(3))
}
