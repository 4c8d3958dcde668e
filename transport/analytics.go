package transport

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"notification-service/analytics"
	"notification-service/broker"
)

// GET /api/v1/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD&type=: the figures
// per notification type and UTC day (package analytics says what each
// counts), for the dashboard and for the backend. to defaults to today,
// from to six days before to; a range holds at most the retention's days.

// defaultAnalyticsDays is the range without from: a week.
const defaultAnalyticsDays = 7

// figures is one row of the answer: a day's (or the range's) counts of a
// type. read_rate and median_time_to_read_seconds are null without sends,
// respectively reads.
type figures struct {
	Date              string   `json:"date,omitempty"`
	Type              string   `json:"type"`
	Sent              int64    `json:"sent"`
	Delivered         int64    `json:"delivered"`
	Read              int64    `json:"read"`
	ReadRate          *float64 `json:"read_rate"`
	MedianTimeToReadS *float64 `json:"median_time_to_read_seconds"`
}

func figuresOf(date, typ string, c analytics.Counts) figures {
	f := figures{Date: date, Type: typ, Sent: c.Sent, Delivered: c.Delivered, Read: c.Read}
	if rate, ok := c.ReadRate(); ok {
		rate = float64(int(rate*10000+0.5)) / 10000
		f.ReadRate = &rate
	}
	if m, ok := c.MedianTimeToRead(); ok {
		s := float64(m.Milliseconds()) / 1000
		f.MedianTimeToReadS = &s
	}
	return f
}

type analyticsResponse struct {
	From          string    `json:"from"`
	To            string    `json:"to"`
	Type          string    `json:"type,omitempty"`
	RetentionDays int       `json:"retention_days"`
	MedianError   float64   `json:"median_error"`
	Days          []figures `json:"days"`
	Types         []figures `json:"types"`
	Total         figures   `json:"total"`
}

func (s *Server) handleAnalytics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		store := s.monitoring.Analytics
		if store == nil {
			writeError(w, notEnabled("analytics"))
			return
		}
		from, to, typ, e := s.analyticsQuery(r, time.Now())
		if e != nil {
			writeError(w, e)
			return
		}
		rows, err := store.Query(r.Context(), from, to, typ)
		if errors.Is(err, analytics.ErrRange) {
			writeError(w, invalid("from", "the range is too long"))
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp := analyticsResponse{
			From: from.String(), To: to.String(), Type: typ, RetentionDays: s.monitoring.RetentionDays,
			MedianError: float64(int(analytics.MedianError*1000+0.5)) / 1000,
			Days:        make([]figures, 0, len(rows)), Types: []figures{},
		}
		byType := map[string]*analytics.Counts{}
		var total analytics.Counts
		for _, row := range rows {
			resp.Days = append(resp.Days, figuresOf(row.Day.String(), row.Type, row.Counts))
			c := byType[row.Type]
			if c == nil {
				c = &analytics.Counts{}
				byType[row.Type] = c
			}
			c.Add(row.Counts)
			total.Add(row.Counts)
		}
		for _, t := range slices.Sorted(maps.Keys(byType)) {
			resp.Types = append(resp.Types, figuresOf("", t, *byType[t]))
		}
		resp.Total = figuresOf("", typ, total)
		writeJSON(w, http.StatusOK, resp)
	})
}

// analyticsQuery reads and checks from, to and type.
func (s *Server) analyticsQuery(r *http.Request, now time.Time) (from, to analytics.Day, typ string, e *apiError) {
	q := r.URL.Query()
	to = analytics.DayOf(now)
	if raw := q.Get("to"); raw != "" {
		d, err := analytics.ParseDay(raw)
		if err != nil {
			return 0, 0, "", invalid("to", "to must be a date written YYYY-MM-DD")
		}
		to = d
	}
	from = to - (defaultAnalyticsDays - 1)
	if raw := q.Get("from"); raw != "" {
		d, err := analytics.ParseDay(raw)
		if err != nil {
			return 0, 0, "", invalid("from", "from must be a date written YYYY-MM-DD")
		}
		from = d
	}
	if from > to {
		return 0, 0, "", invalid("from", "from must not be after to")
	}
	maxDays := min(s.monitoring.RetentionDays+1, analytics.MaxQueryDays)
	if int(to-from)+1 > maxDays {
		return 0, 0, "", invalid("from", "a range holds at most "+strconv.Itoa(maxDays)+" days (the retention, ANALYTICS_RETENTION, and today)")
	}
	typ = q.Get("type")
	if typ != "" {
		if e := checkText("type", typ, broker.MaxTypeLen); e != nil {
			return 0, 0, "", e
		}
	}
	return from, to, typ, nil
}

func notEnabled(what string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_enabled", Message: what + " is not enabled on this server"}
}
