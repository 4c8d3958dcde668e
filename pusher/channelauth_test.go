package pusher_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"notification-service/pusher"
)

// Pusher's worked examples ("Authentication and authorization signatures"),
// each recomputed independently:
//
//	printf '%s' '1234.1234:private-foobar' | openssl dgst -sha256 -hmac 7ad3773142a6692b25b8
//	  → 58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4
//	printf '%s' '1234.1234:presence-foobar:{"user_id":10,"user_info":{"name":"Mr. Pusher"}}' | openssl dgst -sha256 -hmac 7ad3773142a6692b25b8
//	  → afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c
const (
	docSocketID         = "1234.1234"
	docPrivateAuth      = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	docPresenceData     = `{"user_id":10,"user_info":{"name":"Mr. Pusher"}}`
	docPresenceAuth     = "278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
	docPrivateSignature = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
)

func TestChannelAuthMatchesPusherExamples(t *testing.T) {
	is := is.New(t)
	is.Equal(pusher.ChannelAuth(docApp, docSocketID, "private-foobar", ""), docPrivateAuth)
	is.Equal(pusher.ChannelAuth(docApp, docSocketID, "presence-foobar", docPresenceData), docPresenceAuth)
	is.Equal(docPrivateAuth, docApp.Key+":"+hmacHex(docApp.Secret, "1234.1234:private-foobar"))

	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "private-foobar", docPrivateAuth, ""))
	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "presence-foobar", docPresenceAuth, docPresenceData))
	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "private-encrypted-foobar",
		pusher.ChannelAuth(docApp, docSocketID, "private-encrypted-foobar", ""), ""))
	// A private subscription that sends channel_data is signed over it, as
	// pusher-http-php and Reverb sign it.
	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "private-foobar",
		pusher.ChannelAuth(docApp, docSocketID, "private-foobar", `{"x":1}`), `{"x":1}`))
}

func TestVerifyChannelAuthRefusals(t *testing.T) {
	other := pusher.App{ID: "4", Key: "otherkey0000000000000", Secret: "othersecret000000000"}
	for _, tc := range []struct {
		name                    string
		socketID, channel, auth string
		channelData             string
		reason                  error
	}{
		{"no auth", docSocketID, "private-foobar", "", "", pusher.ErrUnauthorized},
		{"a signature for another socket", "1234.5678", "private-foobar", docPrivateAuth, "", pusher.ErrUnauthorized},
		{"a signature for another channel", docSocketID, "private-foobaz", docPrivateAuth, "", pusher.ErrUnauthorized},
		{"a private signature on the presence channel of the same name", docSocketID, "presence-foobar", docPrivateAuth, docPresenceData, pusher.ErrUnauthorized},
		{"presence without channel_data", docSocketID, "presence-foobar", docPresenceAuth, "", pusher.ErrInvalidChannelData},
		{"altered channel_data", docSocketID, "presence-foobar", docPresenceAuth, `{"user_id":1,"user_info":{"name":"Mr. Pusher"}}`, pusher.ErrUnauthorized},
		{"channel_data with a space more", docSocketID, "presence-foobar", docPresenceAuth, `{"user_id": 10,"user_info":{"name":"Mr. Pusher"}}`, pusher.ErrUnauthorized},
		{"channel_data added to a private signature", docSocketID, "private-foobar", docPrivateAuth, `{"user_id":10}`, pusher.ErrUnauthorized},
		{"another app's key with our signature", docSocketID, "private-foobar", other.Key + ":" + docPrivateSignature, "", pusher.ErrUnauthorized},
		{"another app's correct signature", docSocketID, "private-foobar", pusher.ChannelAuth(other, docSocketID, "private-foobar", ""), "", pusher.ErrUnauthorized},
		{"the signature alone", docSocketID, "private-foobar", docPrivateSignature, "", pusher.ErrUnauthorized},
		{"the key alone", docSocketID, "private-foobar", docApp.Key, "", pusher.ErrUnauthorized},
		{"the key and a colon", docSocketID, "private-foobar", docApp.Key + ":", "", pusher.ErrUnauthorized},
		{"a signature that is not hex", docSocketID, "private-foobar", docApp.Key + ":" + strings.Repeat("z", 64), "", pusher.ErrUnauthorized},
		{"a truncated signature", docSocketID, "private-foobar", docPrivateAuth[:len(docPrivateAuth)-2], "", pusher.ErrUnauthorized},
		{"a signature with a colon more", docSocketID, "private-foobar", docPrivateAuth + ":", "", pusher.ErrUnauthorized},
		{"a key in capitals", docSocketID, "private-foobar", strings.ToUpper(docApp.Key) + docPrivateAuth[len(docApp.Key):], "", pusher.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			err := pusher.VerifyChannelAuth(docApp, tc.socketID, tc.channel, tc.auth, tc.channelData)
			var pe *pusher.ProtocolError
			is.True(errors.As(err, &pe))
			is.Equal(pe.Code, pusher.CodeUnauthorized) // 4009, as Reverb answers
			is.True(errors.Is(err, tc.reason))
			for _, secret := range []string{docApp.Secret, docPrivateSignature, strings.TrimPrefix(docPresenceAuth, docApp.Key+":")} {
				is.True(!strings.Contains(err.Error(), secret)) // no secret, no expected signature
			}
		})
	}
}

func TestVerifyChannelAuthPublicChannels(t *testing.T) {
	is := is.New(t)
	// pusher-js sends "auth":"" for public channels; nothing to check.
	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "tareas", "", ""))
	is.NoErr(pusher.VerifyChannelAuth(docApp, docSocketID, "tareas", "garbage", "garbage"))
}

func TestParseChannelData(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want pusher.Member
	}{
		{"Pusher's example, a numeric id", docPresenceData, pusher.Member{UserID: "10", Info: []byte(`{"name":"Mr. Pusher"}`)}},
		{"a string id", `{"user_id":"u-1","user_info":{"name":"Ana"}}`, pusher.Member{UserID: "u-1", Info: []byte(`{"name":"Ana"}`)}},
		{"no user_info", `{"user_id":"7"}`, pusher.Member{UserID: "7"}},
		{"null user_info", `{"user_id":"7","user_info":null}`, pusher.Member{UserID: "7"}},
		{"user_info compacted", `{ "user_id" : 7 , "user_info" : { "a" : [ 1 , 2 ] } }`, pusher.Member{UserID: "7", Info: []byte(`{"a":[1,2]}`)}},
		{"Laravel's whole user array as user_info", `{"user_id":1,"user_info":{"id":1,"name":"Ana","email":"ana@example.com"}}`,
			pusher.Member{UserID: "1", Info: []byte(`{"id":1,"name":"Ana","email":"ana@example.com"}`)}},
		{"a negative and a fractional number stay as written", `{"user_id":-1.5e3}`, pusher.Member{UserID: "-1.5e3"}},
		{"unknown fields ignored", `{"user_id":"a","watchlist":["b"]}`, pusher.Member{UserID: "a"}},
		{"a user_info that is a string", `{"user_id":"a","user_info":"Ana"}`, pusher.Member{UserID: "a", Info: []byte(`"Ana"`)}},
		{"an escaped id", `{"user_id":"\u00e9\"x"}`, pusher.Member{UserID: `é"x`}},
		{"an id of 128 characters", `{"user_id":"` + strings.Repeat("é", 128) + `"}`, pusher.Member{UserID: strings.Repeat("é", 128)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m, err := pusher.ParseChannelData(tc.data, 0)
			is.NoErr(err)
			is.Equal(m.UserID, tc.want.UserID)
			is.Equal(string(m.Info), string(tc.want.Info))
		})
	}
}

func TestParseChannelDataRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		max  int
	}{
		{"empty", ``, 0},
		{"not JSON", `user 10`, 0},
		{"an array", `[{"user_id":1}]`, 0},
		{"null", `null`, 0},
		{"a JSON string", `"{\"user_id\":1}"`, 0},
		{"no user_id", `{"user_info":{}}`, 0},
		{"a null user_id", `{"user_id":null}`, 0},
		{"an empty user_id", `{"user_id":""}`, 0},
		{"a boolean user_id", `{"user_id":true}`, 0},
		{"an object user_id", `{"user_id":{"id":1}}`, 0},
		{"an array user_id", `{"user_id":[1]}`, 0},
		{"a user_id of 129 characters", `{"user_id":"` + strings.Repeat("a", 129) + `"}`, 0},
		{"over the default bound", `{"user_id":1,"user_info":"` + strings.Repeat("a", pusher.DefaultMaxChannelData) + `"}`, 0},
		{"over a custom bound", `{"user_id":1,"user_info":"abcdef"}`, 20},
		{"invalid UTF-8", "{\"user_id\":\"\xff\"}", 0},
		{"an unpaired surrogate", `{"user_id":"\udc00"}`, 0},
		{"too deep", `{"user_id":1,"user_info":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 0},
		{"trailing data", `{"user_id":1} {}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m, err := pusher.ParseChannelData(tc.data, tc.max)
			is.Equal(m.UserID, "")
			var pe *pusher.ProtocolError
			is.True(errors.As(err, &pe))
			is.True(errors.Is(err, pusher.ErrInvalidChannelData))
			is.Equal(pe.Code, pusher.NoCode)
		})
	}
}

func TestVerifyChannelAuthRefusesAnAppWithoutSecret(t *testing.T) {
	is := is.New(t)
	open := pusher.App{ID: "3", Key: docApp.Key}
	auth := pusher.ChannelAuth(open, docSocketID, "private-foobar", "")
	is.True(errors.Is(pusher.VerifyChannelAuth(open, docSocketID, "private-foobar", auth, ""), pusher.ErrUnauthorized))
}
