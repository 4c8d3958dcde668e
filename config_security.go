package main

import (
	"log/slog"
	"regexp"

	"notification-service/transport"
)

// secret is a configuration value that must never be printed: JWT_SECRET
// and API_KEY. Formatting it, logging it or dumping the config that holds
// it (a test failure, a panic) shows a placeholder; code that needs the
// value converts it explicitly.
type secret string

const redacted = "[redacted]"

func (s secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v, which would otherwise bypass String.
func (s secret) GoString() string { return `"` + s.String() + `"` }

// LogValue keeps the value out of slog records.
func (s secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// minAPIKeyBytes is the shortest API_KEY accepted: the key is compared in
// constant time, which is worth little if it can be guessed.
const minAPIKeyBytes = 16

// cookieNamePattern is RFC 6265's cookie-name: an HTTP token.
var cookieNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// rates are the four configured request rates in the transport's terms.
func (c config) rates() transport.RateLimits {
	return transport.RateLimits{
		ConnectsPerAddr: transport.Rate{PerSecond: c.RateConnectsPerAddr, Burst: c.RateConnectsPerAddrBurst},
		ConnectsPerUser: transport.Rate{PerSecond: c.RateConnectsPerUser, Burst: c.RateConnectsPerUserBurst},
		SendsPerAddr:    transport.Rate{PerSecond: c.RateSendsPerAddr, Burst: c.RateSendsPerAddrBurst},
		SendsPerUser:    transport.Rate{PerSecond: c.RateSendsPerUser, Burst: c.RateSendsPerUserBurst},
	}
}

// warnOpenAccess says loudly at start-up what is left open
// (docs/ARCHITECTURE.md#security-and-hostile-input): without JWT_SECRET
// anyone may read any user's stream and inbox, without API_KEY anyone may
// send. It names variables, never their values.
func warnOpenAccess(logger *slog.Logger, c config) {
	if c.JWTSecret == "" {
		logger.Warn("open mode: JWT_SECRET is not set, so anyone can read any user's stream and inbox by naming its user_id; set JWT_SECRET (and API_KEY) in production")
	}
	if c.APIKey == "" {
		logger.Warn("API_KEY is not set: anyone who can reach the service can send, schedule and subscribe connections; set API_KEY in production")
	}
}
