package transport

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"notification-service/audit"
	"notification-service/broker"
	"notification-service/instances"
	"notification-service/schedule"
)

// The dashboard's API, behind the API key: GET /api/v1/dashboard/stats (the
// instances, the schedules, Redis), polled by the page about once a
// second; GET /api/v1/dashboard/audit/stream (the live trail, streamed into
// the page: audit_stream.go); and GET /api/v1/dashboard/audit, the same
// trail as one JSON answer, for the backend and scripts that poll.
//
// What they cost does not grow with viewers or traffic: stats are made at
// most once per statsEvery and shared by every viewer (instances report
// themselves; nothing here walks connections); the trail is a bounded
// sample, streamed with one store read per 500 ms per instance while any
// dashboard is open, whatever the number of viewers (and none while none
// is), and read in one command per poll, at most auditMaxLimit events.

// statsEvery is how long one stats answer serves every viewer.
const statsEvery = 900 * time.Millisecond

// statsTimeout bounds the reads one stats answer makes (Redis away).
const statsTimeout = 2 * time.Second

// upcomingShown is how many pending schedules the dashboard lists.
const upcomingShown = 10

type statsResponse struct {
	Mode      string         `json:"mode"`
	At        time.Time      `json:"at"`
	Instance  string         `json:"instance"`
	Instances []instanceView `json:"instances"`
	Schedules schedulesView  `json:"schedules"`
	// Redis is null in memory mode.
	Redis any `json:"redis"`
	// Errors name the parts that could not be read this time.
	Errors []string `json:"errors,omitempty"`
}

type instanceView struct {
	instances.Report
	Self bool `json:"self"`
}

type schedulesView struct {
	Pending int            `json:"pending"`
	Next    []scheduleView `json:"next"`
}

// statsCache holds the last stats answer.
type statsCache struct {
	mu   sync.Mutex
	at   time.Time
	body statsResponse
}

func (s *Server) handleDashboardStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.monitoring.Instances == nil {
			writeError(w, notEnabled("the dashboard"))
			return
		}
		writeJSON(w, http.StatusOK, s.stats())
	})
}

// stats answers from the cache, or makes the answer once for everyone
// asking meanwhile.
func (s *Server) stats() statsResponse {
	c := &s.statsCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < statsEvery {
		return c.body
	}
	// Not the request's context: a viewer closing its tab must not fail
	// the answer the others wait for.
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	body := statsResponse{Mode: s.opts.Mode, At: time.Now().UTC(), Instance: s.monitoring.Self,
		Instances: []instanceView{}, Schedules: schedulesView{Next: []scheduleView{}}}
	if reports, err := s.monitoring.Instances.List(ctx); err == nil {
		for _, rep := range reports {
			body.Instances = append(body.Instances, instanceView{rep, rep.ID == s.monitoring.Self})
		}
	} else {
		body.Errors = append(body.Errors, "instances")
	}
	if items, total, err := s.upcoming(ctx, upcomingShown); err == nil {
		body.Schedules.Pending = total
		for _, it := range items {
			body.Schedules.Next = append(body.Schedules.Next, viewOf(it))
		}
	} else {
		body.Errors = append(body.Errors, "schedules")
	}
	if s.monitoring.Redis != nil {
		body.Redis = s.monitoring.Redis(ctx)
	}
	c.at, c.body = time.Now(), body
	return body
}

// upcoming is the n pending schedules due first, and how many are pending:
// one page of the listing, whatever the number pending.
func (s *Server) upcoming(ctx context.Context, n int) ([]schedule.Item, int, error) {
	page, err := s.sched.List(ctx, schedule.Query{Limit: n})
	if err != nil {
		return nil, 0, err
	}
	return page.Items, page.Total, nil
}

// Bounds of one audit poll.
const (
	auditDefaultLimit = 50
	auditMaxLimit     = 200
)

type auditResponse struct {
	Events []audit.Event `json:"events"`
	// Last is the newest event's id: the page's next ?after=, so each poll
	// brings only what is new.
	Last string `json:"last,omitempty"`
}

func (s *Server) handleDashboardAudit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.monitoring.Trail == nil {
			writeError(w, notEnabled("the audit trail"))
			return
		}
		after, f, limit, e := auditQuery(r)
		if e != nil {
			writeError(w, e)
			return
		}
		events, err := s.monitoring.Trail.Latest(r.Context(), after, f, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp := auditResponse{Events: events, Last: after}
		if resp.Events == nil {
			resp.Events = []audit.Event{}
		}
		if len(events) > 0 {
			resp.Last = events[0].ID
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// auditQuery reads and checks the trail's query: after, the filter, limit.
func auditQuery(r *http.Request) (string, audit.Filter, int, *apiError) {
	q := r.URL.Query()
	after := q.Get("after")
	if after != "" && !audit.ValidID(after) {
		return "", audit.Filter{}, 0, invalid("after", "after must be the id of an event (the last field of an earlier answer)")
	}
	f := audit.Filter{Action: q.Get("action"), UserID: q.Get("user_id"), Type: q.Get("type"), Channel: q.Get("channel")}
	if f.UserID != "" {
		if e := userParam("user_id", f.UserID); e != nil {
			return "", f, 0, e
		}
	}
	if f.Channel != "" && !channelPattern.MatchString(f.Channel) {
		return "", f, 0, invalid("channel", "channel "+channelRule)
	}
	for _, t := range []struct{ field, value string }{{"type", f.Type}, {"action", f.Action}} {
		if e := checkText(t.field, t.value, broker.MaxTypeLen); e != nil { // an action name is far shorter
			return "", f, 0, e
		}
	}
	limit := auditDefaultLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > auditMaxLimit {
			return "", f, 0, invalid("limit", "limit must be a whole number from 1 to "+strconv.Itoa(auditMaxLimit))
		}
		limit = n
	}
	return after, f, limit, nil
}
