// Package version says which build of the service is running: the release
// version and VCS revision stamped at build time (go build -ldflags "-X
// notification-service/internal/version.version=v1.2.3 -X
// notification-service/internal/version.revision=abc123", as the
// Dockerfile does), or else what the Go toolchain recorded in the binary.
package version

import "runtime/debug"

// Stamped by the linker; empty when the build did not set them.
var (
	version  string
	revision string
)

// Build names a build of the service.
type Build struct {
	Version   string // a release (v1.2.3), a module pseudo-version, or "(devel)"
	Revision  string // the VCS revision, "" when unknown
	GoVersion string
}

// Current is the running build.
func Current() Build {
	b := Build{Version: "(devel)", GoVersion: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.Version, b.GoVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Revision = s.Value
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if revision != "" {
		b.Revision = revision
	}
	return b
}
