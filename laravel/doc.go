// Package laravel turns Laravel's broadcasts into the service's
// notifications. It owns two things:
//
//   - the mapping (mapping.go), the one set of rules both of Laravel's paths
//     share: a Broadcast (event name, channels, payload, socket id) as the
//     Pusher HTTP API and the `redis` broadcaster carry it becomes the
//     notifications to publish, or a *FieldError naming what is refused;
//   - the ingester (ingest.go) for Laravel's `redis` broadcaster: it
//     PSUBSCRIBEs Laravel's prefix, rebuilds each broadcast from the
//     messages one EVAL published, maps it, and hands it to a Publisher, once
//     across every instance of the service (lease.go, takeover.go).
//
// It does not own HTTP (the Pusher HTTP API's handler, signatures and
// answers live in transport/ and pusher/), publishing itself (stamping,
// storing, metrics and audit are the Publisher's), the service's
// configuration (the caller passes clients, prefixes and limits), or the
// delivery of Notification.Exclude (the hub's).
package laravel
