package transport

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"notification-service/broker"
	"notification-service/laravel"
	"notification-service/publish"
	"notification-service/pusher"
)

// The Pusher HTTP API resource: POST /apps/{app_id}/events and
// /apps/{app_id}/batch_events, the requests Laravel's pusher and reverb
// broadcasters (and Pusher's server libraries) sign with the app secret.
// Each event becomes notifications through the same mapping as Laravel's
// redis broadcaster (laravel.Mapping) and enters through the one publish
// path. The answer is exactly what those clients expect: 200 with {} (a
// batch: {"batch":{}}); anything else fails the Laravel job that sent it.

// pusherAPIBodyLimit bounds a request body: ten events of the largest data
// Pusher allows, with room for their names and channels.
const pusherAPIBodyLimit = 256 << 10

func (s *Server) handlePusherEvents() http.Handler {
	return s.pusherAPI(func(body []byte) ([]pusher.Event, any, error) {
		ev, err := pusher.ParseEvent(body, s.opts.PusherEventLimits)
		return []pusher.Event{ev}, struct{}{}, err
	})
}

func (s *Server) handlePusherBatchEvents() http.Handler {
	return s.pusherAPI(func(body []byte) ([]pusher.Event, any, error) {
		evs, err := pusher.ParseBatch(body, s.opts.PusherEventLimits)
		return evs, map[string]any{"batch": struct{}{}}, err
	})
}

// pusherAPI serves one of the two endpoints: the app, the signature, the
// body (parse), the mapping, then one publish of every notification the
// events make, so a batch is stored and delivered whole or not at all.
func (s *Server) pusherAPI(parse func(body []byte) ([]pusher.Event, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := s.opts.PusherApp
		if app == nil {
			s.pusherDeny(w, r, &apiError{Status: http.StatusNotFound, Code: "pusher_not_configured",
				Message: "the Pusher HTTP API is off: set PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET"})
			return
		}
		if err := app.CheckID(r.PathValue("app_id")); err != nil {
			s.pusherRefuse(w, r, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pusherAPIBodyLimit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.pusherRefuse(w, r, pusher.BodyTooLarge(pusherAPIBodyLimit))
				return
			}
			s.pusherDeny(w, r, badRequest("bad_body", "", "could not read the request body"))
			return
		}
		req := pusher.APIRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: body}
		if err := pusher.VerifyRequest(*app, req, time.Now(), s.opts.PusherTimestampWindow); err != nil {
			s.pusherRefuse(w, r, err)
			return
		}
		events, answer, err := parse(body)
		if err != nil {
			s.pusherRefuse(w, r, err)
			return
		}
		var ns []broker.Notification
		for _, ev := range events {
			mapped, err := s.opts.Mapping.Notifications(laravel.Broadcast{
				Event: ev.Name, Channels: ev.Channels, Data: json.RawMessage(ev.Data), Socket: ev.SocketID,
			})
			if err != nil {
				s.pusherRefuse(w, r, err)
				return
			}
			ns = append(ns, mapped...)
		}
		if _, err := s.publisher.Publish(r.Context(), publish.SourcePusherAPI, ns, slog.String("remote_addr", r.RemoteAddr)); err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, answer)
	})
}

// pusherRefuse answers a refused Pusher HTTP API request with the status
// Pusher and Reverb use, in the API's error shape (Laravel reads only the
// status).
func (s *Server) pusherRefuse(w http.ResponseWriter, r *http.Request, err error) {
	var pe *pusher.APIError
	var fe *laravel.FieldError
	switch {
	case errors.As(err, &pe):
		s.pusherDeny(w, r, &apiError{Status: pe.Status, Code: pusherCode(pe), Field: pe.Field, Message: pe.Message})
	case errors.As(err, &fe):
		// What the mapping refuses is a field of the event, as Reverb's
		// validator answers it.
		s.pusherDeny(w, r, &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Field: fe.Field, Message: fe.Error()})
	default:
		s.fail(w, r, err)
	}
}

// pusherDeny answers a refusal of the Pusher HTTP API and audits it as
// denied, whatever its status: the API's caller is Laravel, holding the
// secret, so a refusal is a misconfiguration, a bug or a probe. The record has
// the code, the field at fault (a name the parser chose), the method and
// the path; never the query (its signature), the body or the message
// (which quotes the body).
func (s *Server) pusherDeny(w http.ResponseWriter, r *http.Request, e *apiError) {
	attrs := requestAttrs(r)
	if e.Field != "" {
		attrs = append(attrs, slog.String("field", e.Field))
	}
	writeError(w, s.denied(e, attrs...))
}

// pusherCode names a Pusher refusal in the API's terms.
func pusherCode(pe *pusher.APIError) string {
	switch pe.Status {
	case http.StatusUnauthorized:
		return "signature_invalid"
	case http.StatusNotFound:
		return "unknown_app"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnprocessableEntity:
		return "validation_failed"
	default:
		return "bad_request"
	}
}
