package transport_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/matryer/is"

	"notification-service/broker"
)

// interruptedBus makes the first Publish misbehave as an interrupted
// attempt does: panic (a bug half-way), or hold until released (an attempt
// still running when the retry comes).
type interruptedBus struct {
	broker.Bus
	panics  bool
	release chan struct{} // nil: no hold
	entered chan struct{}
	first   sync.Once
}

func (b *interruptedBus) Publish(ctx context.Context, ns ...broker.Notification) ([]broker.Notification, error) {
	isFirst := false
	b.first.Do(func() { isFirst = true })
	if isFirst {
		close(b.entered)
		if b.panics {
			panic("interrupted publish")
		}
		if b.release != nil {
			<-b.release
		}
	}
	return b.Bus.Publish(ctx, ns...)
}

// TestIdempotencyPanicReleasesTheKey: an attempt that panics half-way
// releases its claim, so the backend's retry goes through at once rather
// than after the lease, and sends one copy.
func TestIdempotencyPanicReleasesTheKey(t *testing.T) {
	is := is.New(t)
	bus := &interruptedBus{panics: true, entered: make(chan struct{})}
	ts := newTestServer(t, wrapBus(func(b broker.Bus) broker.Bus { bus.Bus = b; return bus }))
	const send = "/api/v1/notifications/send"
	body := `{"title":"once","user_id":"u"}`

	status, resp, _ := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k")
	is.Equal(status, http.StatusInternalServerError)
	is.Equal(resp["error"].(map[string]any)["code"], "internal")

	status, resp, hdr := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "")
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "")), []string{resp["id"].(string)})
}

// TestIdempotencyRetryDuringAnAttempt: a retry while the first attempt is
// still running is told so with a 409 that carries Retry-After, and once the
// attempt is done the retry gets its answer.
func TestIdempotencyRetryDuringAnAttempt(t *testing.T) {
	is := is.New(t)
	bus := &interruptedBus{release: make(chan struct{}), entered: make(chan struct{})}
	ts := newTestServer(t, wrapBus(func(b broker.Bus) broker.Bus { bus.Bus = b; return bus }))
	const send = "/api/v1/notifications/send"
	body := `{"title":"once","user_id":"u"}`

	type answer struct {
		status int
		resp   map[string]any
	}
	firstDone := make(chan answer, 1)
	go func() {
		status, resp, _ := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k")
		firstDone <- answer{status, resp}
	}()
	<-bus.entered // the first attempt holds the key and is publishing

	status, resp, hdr := ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k")
	apiWantError(t, status, resp, hdr, http.StatusConflict, "idempotency_in_progress", "")
	retryAfter, err := strconv.Atoi(hdr.Get("Retry-After"))
	is.NoErr(err)
	is.True(retryAfter >= 1 && retryAfter <= 5) // within the default lease

	close(bus.release)
	first := <-firstDone
	is.Equal(first.status, http.StatusCreated)
	status, resp, hdr = ts.do(t, http.MethodPost, send, body, "Idempotency-Key", "k")
	is.Equal(status, http.StatusCreated)
	is.Equal(hdr.Get("Idempotent-Replayed"), "true")
	is.Equal(resp["id"], first.resp["id"])
	is.Equal(apiIDs(t, apiInbox(t, ts, "u", "")), []string{first.resp["id"].(string)})
}
