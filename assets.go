package main

import (
	"embed"
	"io/fs"
)

// embedded holds the browser client, its demo page and the API's OpenAPI
// description, so the one binary serves them (GET /client.js, /client.d.ts,
// /, /openapi.yaml) with nothing to deploy beside it.
//
//go:embed clients/js/client.js clients/js/client.d.ts web docs/openapi.yaml
var embedded embed.FS

// assets is what transport.Deps.Assets serves.
var assets fs.FS = embedded
