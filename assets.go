package main

import (
	"embed"
	"io/fs"
)

// embedded holds the browser client and its demo page, so the one binary
// serves them (GET /client.js, /client.d.ts, /) with nothing to deploy
// beside it.
//
//go:embed clients/js/client.js clients/js/client.d.ts web
var embedded embed.FS

// assets is what transport.Deps.Assets serves.
var assets fs.FS = embedded
