package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"notification-service/broker"
	"notification-service/internal/redisconn"
	"notification-service/internal/redistest"
)

func TestRedis(t *testing.T) {
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	testStore(t, func(t *testing.T, limits Limits) Store {
		return NewRedis(client, RedisOptions{Prefix: redistest.HostilePrefix(), Limits: limits})
	})
}

func TestLuaValidOnOldestRedis(t *testing.T) {
	redistest.CheckLuaFiles(t, redisconn.MinVersion, "lua/*.lua")
}

// TestRedisKeysExpire: a day's keys go with its retention, the bitmaps a
// day after their last report; nothing is kept for ever.
func TestRedisKeysExpire(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	client := redistest.Start(t, redistest.Options{ValidOn: redisconn.MinVersion}).Client()
	prefix := redisconn.Prefix("p:")
	s := NewRedis(client, RedisOptions{Prefix: prefix, Limits: Limits{Retention: 72 * time.Hour}})
	now := time.Now().UTC()
	day := DayOf(now)
	r := NewRecorder(s, RecorderOptions{})
	r.Published([]broker.Notification{{Seq: 7, Type: "t:with:colons", Timestamp: now}})
	r.Delivered(broker.Notification{Seq: 7, Type: "t:with:colons", Timestamp: now}, 1)
	r.Read("t:with:colons", now, now.Add(time.Hour))
	is.NoErr(r.Flush(ctx))

	keys, err := client.Keys(ctx, "p:*").Result()
	is.NoErr(err)
	is.Equal(len(keys), 4) // the day, its types, two bitmaps
	for _, k := range keys {
		ttl, err := client.TTL(ctx, k).Result()
		is.NoErr(err)
		want := 24 * time.Hour
		if k == "p:analytics:day:"+day.String() || k == "p:analytics:types:"+day.String() {
			want = time.Until((day + 1).Start().Add(72 * time.Hour))
		}
		if ttl <= 0 || ttl > want+time.Second || ttl < want-10*time.Second {
			t.Fatalf("%s expires in %v, want about %v", k, ttl, want)
		}
	}
	rows, err := s.Query(ctx, day, day, "")
	is.NoErr(err)
	is.Equal(rows[0].Type, "t:with:colons")
	is.Equal([]int64{rows[0].Sent, rows[0].Delivered, rows[0].Read}, []int64{1, 1, 1})
}
