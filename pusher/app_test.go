package pusher_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

func TestAppValidate(t *testing.T) {
	good := pusher.App{ID: "123456", Key: "f3k9a2l1m0pqrs7tu8vw", Secret: "s3cr3t-s3cr3t-s3cr3t"}
	for _, tc := range []struct {
		name string
		edit func(a *pusher.App)
		ok   bool
	}{
		{"Reverb's generated values", func(a *pusher.App) {}, true},
		{"Pusher's documented values", func(a *pusher.App) {
			*a = pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
		}, true},
		{"soketi's defaults", func(a *pusher.App) { *a = pusher.App{ID: "app-id", Key: "app-key", Secret: "app-secret"} }, true},
		{"dots and underscores", func(a *pusher.App) { a.ID, a.Key = "my_app.1", "key_1.x" }, true},
		{"an 8-byte secret", func(a *pusher.App) { a.Secret = "12345678" }, true},
		{"no id", func(a *pusher.App) { a.ID = "" }, false},
		{"an id with a slash", func(a *pusher.App) { a.ID = "1/2" }, false},
		{"an id of 65 characters", func(a *pusher.App) { a.ID = strings.Repeat("1", 65) }, false},
		{"no key", func(a *pusher.App) { a.Key = "" }, false},
		{"a key with a colon, which ends the key in key:signature", func(a *pusher.App) { a.Key = "a:b" }, false},
		{"a key with a space", func(a *pusher.App) { a.Key = "a b" }, false},
		{"a key of non-ASCII letters", func(a *pusher.App) { a.Key = "clé" }, false},
		{"no secret", func(a *pusher.App) { a.Secret = "" }, false},
		{"a 7-byte secret", func(a *pusher.App) { a.Secret = "1234567" }, false},
		{"a secret of 257 bytes", func(a *pusher.App) { a.Secret = strings.Repeat("s", 257) }, false},
		{"a secret with a trailing newline", func(a *pusher.App) { a.Secret += "\n" }, false},
		{"a secret with a leading space", func(a *pusher.App) { a.Secret = " " + a.Secret }, false},
		{"the secret equal to the public key", func(a *pusher.App) { a.Secret = a.Key }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			a := good
			tc.edit(&a)
			err := a.Validate()
			if tc.ok {
				is.NoErr(err)
				return
			}
			is.True(errors.Is(err, pusher.ErrInvalidApp))
			if a.Secret != "" && len(a.Secret) > 2 {
				is.True(!strings.Contains(err.Error(), strings.TrimSpace(a.Secret))) // the secret stays out of the error
			}
		})
	}
}

// The secret never leaves through formatting, logging or JSON.
func TestAppRedactsSecret(t *testing.T) {
	is := is.New(t)
	a := pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("configured", "app", a)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("configured", slog.Any("app", a), slog.Any("ptr", &a))
	js, err := json.Marshal(a)
	is.NoErr(err)
	jsPtr, err := json.Marshal(struct{ A *pusher.App }{&a})
	is.NoErr(err)
	for _, out := range []string{
		fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprintf("%v %+v %#v", &a, &a, &a),
		fmt.Sprintf("%v", []pusher.App{a}), fmt.Sprintf("%+v", struct{ App pusher.App }{a}),
		fmt.Sprintf("%#v", struct{ App pusher.App }{a}),
		logs.String(), string(js), string(jsPtr), a.String(), a.GoString(), a.LogValue().String(),
	} {
		is.True(!strings.Contains(out, a.Secret)) // secret leaked
		is.True(strings.Contains(out, a.Key))     // the key is shown
	}
	is.True(strings.Contains(a.String(), "[redacted]"))
	is.Equal(pusher.App{ID: "1", Key: "k"}.String(), "App{ID:1 Key:k Secret:}") // an unset secret shows as unset
}

func TestAppCheckID(t *testing.T) {
	is := is.New(t)
	app := pusher.App{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8"}
	is.NoErr(app.CheckID("3"))
	for _, id := range []string{"4", "", "03", "3 ", strings.Repeat("9", 10_000)} {
		err := app.CheckID(id)
		var ae *pusher.APIError
		is.True(errors.As(err, &ae))
		is.Equal(ae.Status, 404)
		is.True(errors.Is(err, pusher.ErrUnknownApp))
		is.True(len(err.Error()) < 200) // a hostile id does not become a huge message
	}
}
