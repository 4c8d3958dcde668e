package laravel

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"notification-service/broker"
	"notification-service/store"
)

// term is one period of leadership: the lease's token, which fences every
// progress marker the leader writes. nil in memory mode.
type term struct{ token string }

// pending is a broadcast to publish again under the ids already chosen for
// it: the one a previous leader marked last.
type pending struct {
	group []entry
	ids   []string
}

// publishTimeout bounds one publish attempt; retries follow while the
// leader leads.
const publishTimeout = 10 * time.Second

// lead publishes every broadcast from pos on until ctx ends (a graceful
// stop, or the lease lost) or the lease refuses a marker. It finishes the
// broadcast in hand first, so whoever leads next continues right after it.
func (in *Ingester) lead(ctx context.Context, t *term, pos uint64, again *pending) {
	in.stats.leading.Store(true)
	defer in.stats.leading.Store(false)
	if again != nil && !in.process(ctx, t, again.group, again.ids) {
		return
	}
	for {
		group, ok := in.nextBroadcast(ctx, pos)
		if !ok || ctx.Err() != nil {
			return
		}
		pos = group[len(group)-1].seq + 1
		if !in.process(ctx, t, group, nil) {
			return
		}
	}
}

// nextBroadcast gathers the messages of one EVAL from pos on: Laravel's
// RedisBroadcaster publishes the same payload to each channel in one
// script, so consecutive identical payloads on different channels are one
// broadcast. Nothing can come between them, but they may arrive a moment
// apart, so it lingers briefly for the rest. A payload repeated on a
// channel already in the group starts another broadcast.
func (in *Ingester) nextBroadcast(ctx context.Context, pos uint64) ([]entry, bool) {
	first, ok := in.backlog.wait(ctx, pos)
	if !ok {
		return nil, false
	}
	if first.seq > pos {
		in.stats.skipped.Add(first.seq - pos)
		in.log.Warn("laravel: messages aged out of the backlog before they were published",
			slog.Uint64("count", first.seq-pos))
	}
	group := []entry{first}
	lingerUntil := time.Now().Add(in.cfg.Linger)
	for {
		next, ok := in.backlog.at(group[len(group)-1].seq + 1)
		if !ok {
			left := time.Until(lingerUntil)
			if left <= 0 || !in.backlog.waitFor(ctx, left) {
				return group, true
			}
			continue
		}
		if next.seg != first.seg || !bytes.Equal(next.payload, first.payload) ||
			slices.ContainsFunc(group, func(e entry) bool { return e.channel == next.channel }) {
			return group, true
		}
		group = append(group, next)
	}
}

// process maps one broadcast and publishes it, marking progress first when
// instances share a lease. ids, when given, are the ones a previous leader
// chose. It returns false when the lease refused the marker: another
// instance leads now.
func (in *Ingester) process(ctx context.Context, t *term, group []entry, ids []string) bool {
	channels := make([]string, len(group))
	for i, e := range group {
		channels[i] = e.channel
	}
	b, err := decodeMessage(group[0].payload, channels)
	var ns []broker.Notification
	if err == nil {
		ns, err = in.cfg.Mapping.Notifications(b)
	}
	if err != nil {
		in.stats.invalid.Add(1)
		in.log.Warn("laravel: broadcast refused", slog.Any("channels", channels), slog.Any("error", err),
			slog.String("excerpt", excerpt(group[0].payload)))
		return true
	}
	if ids != nil && len(ids) != len(ns) {
		// The previous leader mapped it differently (another
		// configuration): its ids cannot tell whether it was published.
		in.stats.skipped.Add(uint64(len(group)))
		in.log.Warn("laravel: the previous leader's last broadcast maps differently here; not publishing it again",
			slog.Any("channels", channels))
		return true
	}
	for i := range ns {
		switch {
		case ids != nil:
			ns[i].ID = ids[i]
		case ns[i].ID == "":
			ns[i].ID = broker.NewID()
		}
	}
	if t != nil && !in.mark(ctx, t, group, ns) {
		return false
	}
	in.publish(ctx, ns, channels)
	return true
}

// publish hands ns to the publisher, retrying while Redis is away and this
// instance still leads. Every attempt carries the same ids, so a retry of a
// publish whose answer was lost is not a second publish.
func (in *Ingester) publish(ctx context.Context, ns []broker.Notification, channels []string) {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		// A stop must not cut a publish in half: the attempt outlives ctx.
		attempt, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		err := in.cfg.Publisher.Publish(attempt, Source, ns)
		cancel()
		switch {
		case err == nil:
			in.stats.published.Add(1)
			return
		case !errors.Is(err, store.ErrUnavailable):
			in.stats.failed.Add(1)
			in.log.Error("laravel: publish refused", slog.String("notification_id", ns[0].ID),
				slog.Any("channels", channels), slog.Any("error", err))
			return
		}
		in.log.Warn("laravel: publish failed; retrying", slog.String("notification_id", ns[0].ID), slog.Any("error", err))
		if !sleep(ctx, backoff) {
			// The next leader republishes the marked broadcast under
			// these ids; alone (memory mode) it is lost.
			in.log.Warn("laravel: stopped before publishing", slog.String("notification_id", ns[0].ID))
			return
		}
	}
}

// excerptLen bounds how much of a refused payload a log line shows.
const excerptLen = 200

// excerpt is the start of b, cut at a character boundary.
func excerpt(b []byte) string {
	if len(b) <= excerptLen {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strings.ToValidUTF8(string(b[:cut]), "\uFFFD") + "…"
}
