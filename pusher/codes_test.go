package pusher_test

import (
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// The codes and wordings of Pusher's protocol documentation, "Error Codes".
func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		code      pusher.Code
		number    int
		message   string
		reconnect pusher.Reconnect
	}{
		{pusher.CodeSSLOnly, 4000, "Application only accepts SSL connections, reconnect using wss://", pusher.ReconnectNever},
		{pusher.CodeAppNotFound, 4001, "Application does not exist", pusher.ReconnectNever},
		{pusher.CodeAppDisabled, 4003, "Application disabled", pusher.ReconnectNever},
		{pusher.CodeOverQuota, 4004, "Application is over connection quota", pusher.ReconnectNever},
		{pusher.CodePathNotFound, 4005, "Path not found", pusher.ReconnectNever},
		{pusher.CodeInvalidVersion, 4006, "Invalid version string format", pusher.ReconnectNever},
		{pusher.CodeUnsupportedProtocol, 4007, "Unsupported protocol version", pusher.ReconnectNever},
		{pusher.CodeNoProtocol, 4008, "No protocol version supplied", pusher.ReconnectNever},
		{pusher.CodeUnauthorized, 4009, "Connection is unauthorized", pusher.ReconnectNever},
		{pusher.CodeOverCapacity, 4100, "Over capacity", pusher.ReconnectBackoff},
		{pusher.CodeReconnect, 4200, "Generic reconnect immediately", pusher.ReconnectImmediately},
		{pusher.CodePongTimeout, 4201, "Pong reply not received", pusher.ReconnectImmediately},
		{pusher.CodeInactive, 4202, "Closed after inactivity", pusher.ReconnectImmediately},
		{pusher.CodeClientEventRateLimit, 4301, "Client event rejected due to rate limit", pusher.ReconnectUnspecified},
		{pusher.CodeWatchlistLimit, 4302, "Watchlist limit exceeded", pusher.ReconnectUnspecified},
	} {
		is := is.New(t)
		is.Equal(int(tc.code), tc.number)
		is.Equal(tc.code.Message(), tc.message)
		is.Equal(tc.code.Reconnect(), tc.reconnect)
		is.True(len(tc.message) <= 123) // fits a WebSocket close reason
	}
}

func TestCodeRanges(t *testing.T) {
	is := is.New(t)
	for code, want := range map[pusher.Code]pusher.Reconnect{
		3999: pusher.ReconnectUnspecified, 4000: pusher.ReconnectNever, 4099: pusher.ReconnectNever,
		4100: pusher.ReconnectBackoff, 4199: pusher.ReconnectBackoff, 4200: pusher.ReconnectImmediately,
		4299: pusher.ReconnectImmediately, 4300: pusher.ReconnectUnspecified, 1000: pusher.ReconnectUnspecified,
	} {
		is.Equal(code.Reconnect(), want)
	}
	is.Equal(pusher.Code(4050).Message(), "")
	is.Equal(pusher.Code(4050).String(), "4050")
	is.Equal(pusher.CodeUnauthorized.String(), "4009 Connection is unauthorized")
	is.Equal(pusher.NoCode.String(), "no code")
	is.Equal(pusher.ReconnectBackoff.String(), "after backoff")
}

func TestCheckProtocolVersion(t *testing.T) {
	is := is.New(t)
	for param, want := range map[string]pusher.Code{
		"7": pusher.NoCode, "4": pusher.NoCode, "5": pusher.NoCode, "007": pusher.NoCode,
		"":  pusher.CodeNoProtocol,
		"3": pusher.CodeUnsupportedProtocol, "8": pusher.CodeUnsupportedProtocol, "0": pusher.CodeUnsupportedProtocol,
		"99999999999999999999999": pusher.CodeUnsupportedProtocol,
		"7.0":                     pusher.CodeInvalidVersion, "v7": pusher.CodeInvalidVersion, "-7": pusher.CodeInvalidVersion,
		" 7": pusher.CodeInvalidVersion, "+7": pusher.CodeInvalidVersion, "seven": pusher.CodeInvalidVersion,
	} {
		is.Equal(pusher.CheckProtocolVersion(param), want)
	}
}
