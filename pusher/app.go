package pusher

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// App is one Pusher application: the three values a Laravel app holds as
// PUSHER_APP_ID/KEY/SECRET (or REVERB_APP_*). ID names the app in HTTP API
// paths (/apps/{id}/events), Key is public (browsers connect to /app/{key} and
// it prefixes every signature), Secret signs and must never be shown.
//
// Formatting an App (%v, %+v, %#v), logging it with slog or encoding it as
// JSON shows the secret as "[redacted]"; code that needs the secret reads
// the field.
type App struct {
	ID     string
	Key    string
	Secret string
}

// ErrInvalidApp is wrapped by every error App.Validate returns.
var ErrInvalidApp = errors.New("invalid Pusher app configuration")

// Limits of a configured app. IDs and keys appear in URL paths and the key
// is the part of "key:signature" before the colon, so both are kept to a
// character set that needs no escaping and holds no colon.
const (
	maxAppIDLength  = 64
	maxAppKeyLength = 64
	// MinSecretLength is the shortest secret accepted: every signature is
	// only as strong as a secret nobody can guess. Reverb generates 20
	// characters, Pusher 20 hex digits.
	MinSecretLength = 8
	maxSecretLength = 256
)

const redacted = "[redacted]"

// Validate says whether a configured app can be served: an ID and a key of
// 1 to 64 characters from [A-Za-z0-9._-], and a secret of 8 to 256 bytes
// without surrounding spaces (a copy-paste from a .env file) that differs
// from the key (the key is public). Errors name the variable at fault and
// never the secret.
func (a App) Validate() error {
	if err := checkIdentifier("id", a.ID, maxAppIDLength); err != nil {
		return err
	}
	if err := checkIdentifier("key", a.Key, maxAppKeyLength); err != nil {
		return err
	}
	switch n := len(a.Secret); {
	case n == 0:
		return fmt.Errorf("pusher: app secret is empty: %w", ErrInvalidApp)
	case n < MinSecretLength:
		return fmt.Errorf("pusher: app secret is %d bytes; use at least %d: %w", n, MinSecretLength, ErrInvalidApp)
	case n > maxSecretLength:
		return fmt.Errorf("pusher: app secret is %d bytes; the limit is %d: %w", n, maxSecretLength, ErrInvalidApp)
	}
	if strings.TrimSpace(a.Secret) != a.Secret {
		return fmt.Errorf("pusher: app secret starts or ends with white space: %w", ErrInvalidApp)
	}
	if a.Secret == a.Key {
		return fmt.Errorf("pusher: app secret equals the app key, which browsers see: %w", ErrInvalidApp)
	}
	return nil
}

func checkIdentifier(what, s string, limit int) error {
	if s == "" {
		return fmt.Errorf("pusher: app %s is empty: %w", what, ErrInvalidApp)
	}
	if len(s) > limit {
		return fmt.Errorf("pusher: app %s is %d characters; the limit is %d: %w", what, len(s), limit, ErrInvalidApp)
	}
	for i := 0; i < len(s); i++ {
		if !identifierByte(s[i]) {
			return fmt.Errorf("pusher: app %s %q has %q at byte %d; use only A-Z a-z 0-9 . _ -: %w", what, s, s[i], i, ErrInvalidApp)
		}
	}
	return nil
}

func identifierByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// CheckID answers the HTTP API's first question: does the {app_id} of the
// path name this app? A mismatch is a 404, as Reverb ("No matching
// application for ID") and soketi answer.
func (a App) CheckID(id string) error {
	if id == a.ID {
		return nil
	}
	return &APIError{Status: 404, Message: fmt.Sprintf("no app with id %q", truncate(id, 64)), Err: ErrUnknownApp}
}

// String shows the ID and key, never the secret.
func (a App) String() string {
	return fmt.Sprintf("App{ID:%s Key:%s Secret:%s}", a.ID, a.Key, a.redactedSecret())
}

// GoString covers %#v, which would otherwise print the fields.
func (a App) GoString() string {
	return fmt.Sprintf("pusher.App{ID:%q, Key:%q, Secret:%q}", a.ID, a.Key, a.redactedSecret())
}

// LogValue keeps the secret out of slog records.
func (a App) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.ID),
		slog.String("key", a.Key),
		slog.String("secret", a.redactedSecret()),
	)
}

// MarshalJSON keeps the secret out of a JSON dump of a configuration.
func (a App) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Secret string `json:"secret"`
	}{a.ID, a.Key, a.redactedSecret()})
}

func (a App) redactedSecret() string {
	if a.Secret == "" {
		return ""
	}
	return redacted
}
