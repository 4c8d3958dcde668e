package transport

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/matryer/is"
)

// TestNotificationIDFollowsTheIdempotencyKey: the retry of a send whose
// answer was lost carries the same notification id, which the Redis bus
// recognises instead of publishing twice; anything else gets a fresh id.
func TestNotificationIDFollowsTheIdempotencyKey(t *testing.T) {
	is := is.New(t)
	req := func(key, body string) string {
		r := httptest.NewRequest("POST", "/api/v1/notifications/send", strings.NewReader(body))
		if key != "" {
			r.Header.Set("Idempotency-Key", key)
		}
		k, e := readIdempotencyKey(r, []byte(body))
		if e != nil {
			return "refused: " + e.Code
		}
		return k.notificationID()
	}
	first := req("order-1", `{"title":"a"}`)
	_, err := uuid.Parse(first)
	is.NoErr(err)
	is.Equal(req("order-1", `{"title":"a"}`), first)  // a retry: the same id
	is.True(req("order-2", `{"title":"a"}`) != first) // another key
	is.True(req("order-1", `{"title":"b"}`) != first) // another request
	is.True(req("", `{"title":"a"}`) != req("", `{"title":"a"}`))
	is.Equal(req(strings.Repeat("k", 256), "x"), "refused: validation_failed") // too long
}
