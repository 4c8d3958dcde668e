package laravel

// DecodeMessage exposes the redis broadcaster's message decoding to the
// external tests, which read captured messages with it.
var DecodeMessage = decodeMessage
