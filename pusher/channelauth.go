package pusher

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"notification-service/internal/jsontext"
)

// Member is one presence channel subscriber, as the app's server described
// it in channel_data.
type Member struct {
	// UserID identifies the user: channel_data's user_id, a string or a
	// number (Laravel sends its model's key, often an integer), kept as
	// text: a number's literal ("10"), a string's value. Two connections
	// with the same UserID are one member.
	UserID string
	// Info is user_info as compact JSON, nil when channel_data had none.
	Info json.RawMessage
}

// Bounds of channel_data.
const (
	// MaxUserIDLength is Pusher's presence limit: "maximum 128 characters
	// for user id".
	MaxUserIDLength = 128
	// DefaultMaxChannelData bounds channel_data when ParseChannelData is
	// given no bound: soketi's default member size (2 KB; Pusher allows 1
	// KB of user object). Every member's info is sent to each subscriber
	// that joins, so it is worth keeping small.
	DefaultMaxChannelData = 2 * 1024
)

// ChannelAuth returns the auth value that authorizes socketID to subscribe
// to channel, as Laravel's /broadcasting/auth (pusher-http-php's
// authorizeChannel and authorizePresenceChannel) returns it:
// "key:" + hex HMAC-SHA256, keyed with the secret, of
// "socket_id:channel", or of "socket_id:channel:channel_data" when
// channelData is not empty (presence channels). It exists for tests, which
// play the part of the app's auth endpoint.
func ChannelAuth(app App, socketID, channel, channelData string) string {
	return app.Key + ":" + hex.EncodeToString(mac(app.Secret, channelStringToSign(socketID, channel, channelData)))
}

// VerifyChannelAuth checks the auth a client sent in pusher:subscribe for
// channel on the connection whose id is socketID: it must be the app's key,
// a colon, and the signature ChannelAuth computes, compared in constant
// time. A presence channel needs channelData, which the signature covers;
// on other channels channelData is covered when sent, as pusher-http-php
// and Reverb sign it. A public channel needs nothing and always verifies.
//
// Errors are *ProtocolError with CodeUnauthorized (4009 "Connection is
// unauthorized", as Reverb answers a forged subscription), wrapping
// ErrUnauthorized or ErrInvalidChannelData; the message may say which
// string should have been signed, as Pusher's does, but never the expected
// signature. A refused subscription leaves the connection open.
func VerifyChannelAuth(app App, socketID, channel, auth, channelData string) error {
	kind := KindOf(channel)
	if !kind.NeedsAuth() {
		return nil
	}
	if kind == Presence && channelData == "" {
		return &ProtocolError{Code: CodeUnauthorized, Err: ErrInvalidChannelData,
			Message: fmt.Sprintf("subscribing to presence channel %q needs channel_data from the auth endpoint", truncate(channel, 64))}
	}
	if auth == "" {
		return &ProtocolError{Code: CodeUnauthorized, Err: ErrUnauthorized,
			Message: fmt.Sprintf("subscribing to %s channel %q needs an auth signature", kind, truncate(channel, 64))}
	}
	key, sig, found := strings.Cut(auth, ":")
	// An empty secret would accept HMACs anyone can compute.
	if !found || !constantTimeEqual(key, app.Key) || app.Secret == "" {
		return &ProtocolError{Code: CodeUnauthorized, Err: ErrUnauthorized,
			Message: "invalid auth: it must be the app key, a colon and the signature"}
	}
	toSign := channelStringToSign(socketID, channel, channelData)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(app.Secret, toSign)) {
		return &ProtocolError{Code: CodeUnauthorized, Err: ErrUnauthorized,
			Message: fmt.Sprintf("invalid signature: expected the HMAC-SHA256 hex digest of %q", truncate(toSign, 512))}
	}
	return nil
}

func channelStringToSign(socketID, channel, channelData string) string {
	if channelData == "" {
		return socketID + ":" + channel
	}
	return socketID + ":" + channel + ":" + channelData
}

// ParseChannelData reads presence channel_data, a JSON object with user_id
// (a non-empty string of at most 128 characters, or a number) and optional
// user_info (any JSON value; null means none), at most maxBytes long (0 or
// less means DefaultMaxChannelData). Unknown fields are ignored. Verify the
// signature first: channel_data is only trustworthy once it is.
//
// Errors are *ProtocolError with NoCode wrapping ErrInvalidChannelData.
func ParseChannelData(channelData string, maxBytes int) (Member, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxChannelData
	}
	if len(channelData) > maxBytes {
		return Member{}, invalidChannelData(fmt.Sprintf("channel_data is %d bytes; the limit is %d", len(channelData), maxBytes))
	}
	raw := []byte(channelData)
	if err := jsontext.Check(raw, MaxFrameDepth); err != nil {
		return Member{}, invalidChannelData("channel_data " + err.Error())
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Member{}, invalidChannelData("channel_data is not a JSON object")
	}
	id, ok := present(fields, "user_id")
	if !ok {
		return Member{}, invalidChannelData("channel_data has no user_id")
	}
	var m Member
	switch id[0] {
	case '"':
		if json.Unmarshal(id, &m.UserID) != nil || m.UserID == "" {
			return Member{}, invalidChannelData("channel_data's user_id is empty")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		m.UserID = string(id) // a number's literal, as valid JSON already
	default:
		return Member{}, invalidChannelData("channel_data's user_id must be a string or a number")
	}
	if utf8.RuneCountInString(m.UserID) > MaxUserIDLength {
		return Member{}, invalidChannelData(fmt.Sprintf("channel_data's user_id is over %d characters", MaxUserIDLength))
	}
	if info, ok := present(fields, "user_info"); ok {
		var buf bytes.Buffer
		if err := json.Compact(&buf, info); err != nil {
			return Member{}, invalidChannelData("channel_data's user_info is not valid JSON")
		}
		m.Info = buf.Bytes()
	}
	return m, nil
}

func invalidChannelData(msg string) *ProtocolError {
	return &ProtocolError{Code: NoCode, Message: msg, Err: ErrInvalidChannelData}
}
