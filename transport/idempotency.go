package transport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"notification-service/broker"
)

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// idempotencyKey is a request's Idempotency-Key with the fingerprint of
// what it asks for (method, path and body), read once per request: the
// store compares fingerprints and the notification's id is derived from
// both, so the two can never disagree.
type idempotencyKey struct {
	key         string // "" when the request has none
	fingerprint string
}

// readIdempotencyKey reads the Idempotency-Key of a request whose body is
// body.
func readIdempotencyKey(r *http.Request, body []byte) (idempotencyKey, *apiError) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return idempotencyKey{}, nil
	}
	if len(key) > maxIdempotencyKeyLen {
		return idempotencyKey{}, invalid("Idempotency-Key", "Idempotency-Key is longer than 255 characters")
	}
	sum := sha256.New()
	sum.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	sum.Write(body)
	return idempotencyKey{key: key, fingerprint: hex.EncodeToString(sum.Sum(nil))}, nil
}

// idNamespace names the ids derived from Idempotency-Keys.
var idNamespace = uuid.MustParse("6f1c9a52-3d0e-4f5b-9a57-2d3c8e1b7a40")

// notificationID is a new id, or, for a request with an Idempotency-Key,
// one derived from the key and the request: every attempt of one request
// carries the same id, which the bus publishes once and the scheduler adds
// once. That is what lets a retry take over the claim of an attempt that
// died half-way (idempotent) without notifying twice.
func (k idempotencyKey) notificationID() string {
	if k.key == "" {
		return broker.NewID()
	}
	return uuid.NewSHA1(idNamespace, []byte(k.key+"\n"+k.fingerprint)).String()
}

// storedResponse is what an idempotency key remembers.
type storedResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// idempotent runs create once per Idempotency-Key: a retry with the same
// key and body gets the first answer back (with Idempotent-Replayed: true),
// a different body under the same key gets 409 idempotency_key_reused, and
// a retry while another attempt holds the key gets 409
// idempotency_in_progress with a Retry-After. Without a key it just runs
// create.
//
// The attempt holding the claim finishes it with its answer, or releases
// it when create failed or panicked. An attempt that cannot do either (its
// instance died, Redis went away) leaves a claim that lapses after the
// store's short lease; the next retry then runs create again, which
// publishes or schedules the same derived id (notificationID) and so
// answers what the first attempt did, never a second copy.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, k idempotencyKey, create func() (int, any, error)) {
	if k.key == "" {
		status, v, err := create()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, status, v)
		return
	}
	ctx := r.Context()
	claim, err := s.idem.Begin(ctx, k.key, k.fingerprint)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if claim.Done {
		var stored storedResponse
		if err := json.Unmarshal(claim.Result, &stored); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(stored.Status)
		_, _ = w.Write(append(stored.Body, '\n'))
		return
	}
	// Whatever happens to this attempt from here, a panic included, the
	// claim is finished or released: a retry must not wait out the lease
	// for an attempt that is known to have ended.
	settled := false
	defer func() {
		if !settled {
			s.releaseClaim(ctx, k, claim.Token)
		}
	}()
	status, v, err := create()
	if err != nil {
		// Nothing was created, or (an answer lost on the way) the same
		// derived id is safe to create again: release the key so a retry
		// runs at once.
		settled = true
		s.releaseClaim(ctx, k, claim.Token)
		s.fail(w, r, err)
		return
	}
	settled = true
	encoded, err := json.Marshal(v)
	if err == nil {
		var stored []byte
		stored, err = json.Marshal(storedResponse{Status: status, Body: encoded})
		if err == nil {
			err = s.idem.Finish(context.WithoutCancel(ctx), k.key, claim.Token, stored)
		}
	}
	if err != nil {
		// The notification went out. Failing this response would invite a
		// retry; the retry, after the lease, finds the same derived id
		// already published and answers the same.
		s.logger.Error("idempotency finish", slog.Any("error", err))
	}
	writeJSON(w, status, v)
}

// releaseClaim aborts the attempt's claim; when that fails too, the claim
// lapses after the lease.
func (s *Server) releaseClaim(ctx context.Context, k idempotencyKey, token string) {
	if err := s.idem.Abort(context.WithoutCancel(ctx), k.key, token); err != nil {
		s.logger.Error("idempotency abort", slog.Any("error", err))
	}
}
