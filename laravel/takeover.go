package laravel

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
)

// takeover decides where a new leader starts, from the previous leader's
// progress marker and this instance's backlog:
//
//   - no marker: nobody ever published, so everything kept is new;
//   - the marker's messages found: publish the marked broadcast again under
//     its ids (done already, or cut short by a crash: the bus tells) and
//     everything after it;
//   - not found within Grace (they may still be on their way), and the
//     marker is the one read when this instance's subscription started:
//     the previous leader published nothing this instance heard, so all of
//     the current subscription's messages are new;
//   - otherwise this instance cannot tell what was published: it skips
//     what it holds (counted, logged) and starts with what comes next.
//     Skipping can lose a broadcast; guessing could publish one twice.
//
// ok is false when ctx ended first or the marker could not be read.
func (in *Ingester) takeover(ctx context.Context) (pos uint64, again *pending, ok bool) {
	raw, err := in.readProgress(ctx)
	if err != nil {
		in.log.Warn("laravel: could not read the previous leader's progress", slog.Any("error", err))
		return 0, nil, false
	}
	if raw == "" {
		in.log.Info("laravel: leading; no broadcast was published before")
		return in.backlog.oldest(), nil, true
	}
	var p progress
	window, parsed := p.parse(raw)
	deadline := time.Now().Add(in.cfg.Grace)
	for parsed {
		if seq, found := in.backlog.find(window); found {
			in.log.Info("laravel: leading; continuing after the previous leader's last broadcast")
			return seq + 1, in.marked(seq, p), true
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if !in.backlog.waitFor(ctx, left) {
			return 0, nil, false
		}
	}
	segStart, next, atStart, known := in.backlog.current()
	if known && atStart == raw {
		in.log.Info("laravel: leading; the previous leader published nothing this instance heard")
		return segStart, nil, true
	}
	if skipped := next - in.backlog.oldest(); skipped > 0 {
		in.stats.skipped.Add(skipped)
		in.log.Warn("laravel: leading; the previous leader's last broadcast is not in this instance's backlog, skipping what it holds",
			slog.Uint64("skipped", skipped))
	}
	return next, nil, true
}

// parse reads a marker into p and returns its window of digests; false if
// it is malformed (written by something else), which no backlog matches.
func (p *progress) parse(raw string) ([]uint64, bool) {
	if json.Unmarshal([]byte(raw), p) != nil || len(p.Window) == 0 || p.Size < 1 {
		return nil, false
	}
	window := make([]uint64, len(p.Window))
	for i, s := range p.Window {
		d, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			return nil, false
		}
		window[i] = d
	}
	return window, true
}

// marked rebuilds the broadcast a marker names, ending at seq, to publish
// it again under the marker's ids; nil when the backlog no longer holds
// all of it in one segment.
func (in *Ingester) marked(seq uint64, p progress) *pending {
	if uint64(p.Size) > seq {
		return nil
	}
	group := make([]entry, 0, p.Size)
	for s := seq - uint64(p.Size) + 1; s <= seq; s++ {
		e, ok := in.backlog.at(s)
		if !ok || (len(group) > 0 && e.seg != group[0].seg) {
			in.log.Warn("laravel: the previous leader's last broadcast is only partly kept; not publishing it again")
			return nil
		}
		group = append(group, e)
	}
	return &pending{group: group, ids: p.IDs}
}
