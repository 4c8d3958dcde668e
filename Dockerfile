# Build context: this repository (in the seed's layout, services/go).
#   docker build --build-arg VERSION=v0.2.0 --build-arg REVISION=$(git rev-parse HEAD) -t notification-service .
#
# Build: a static binary (CGO off), no paths or symbol tables baked in. The Go
# image is pinned to the go.mod version, so the image builds with the
# toolchain the tests ran with.
FROM golang:1.26.8-alpine AS build
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
# The release and revision go into the binary (`notification-service version`,
# the build_info metric and the start-up log line); a .git directory is rarely
# part of a build context, so they are passed in.
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags="-s -w -X notification-service/internal/version.version=${VERSION} -X notification-service/internal/version.revision=${REVISION}" \
	-o /out/notification-service .

# Run: alpine, a few MB, whose base carries the CA bundle that rediss://
# needs. The health check is the binary itself, so it needs no wget.
FROM alpine:3.23
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="notification-service" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.licenses="MIT"
RUN addgroup -S -g 10001 notify && adduser -S -D -H -u 10001 -G notify notify
COPY --from=build /out/notification-service /usr/local/bin/notification-service
ENV PORT=8080
EXPOSE 8080
# Numeric, so an orchestrator enforcing runAsNonRoot can check it.
USER 10001:10001
# Liveness, not readiness: /livez stays 200 while Redis is away, so a Redis
# blip does not get the container restarted and its live streams dropped.
# Route traffic on /readyz (Kubernetes readinessProbe, a load balancer).
# `notification-service healthcheck` asks the service's /livez on
# 127.0.0.1:$PORT with the container's own environment: over https:// when
# TLS_CERT_FILE is set, so the check follows the configuration.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
	CMD ["/usr/local/bin/notification-service", "healthcheck"]
# SIGTERM starts the graceful shutdown (streams get a reconnect hint, in-flight
# requests finish, within SHUTDOWN_TIMEOUT): give the container longer than
# that before it is killed (docker stop -t, stop_grace_period, or
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/notification-service"]
