# Build: a static binary (CGO off), no paths or symbol tables baked in.
FROM golang:1.26-alpine AS build
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/notification-service .

# Run: alpine rather than distroless because the healthcheck needs wget
# (busybox's); the image is still a few MB. alpine's base already carries the
# CA bundle that rediss:// needs.
FROM alpine:3.23
RUN addgroup -S -g 10001 notify && adduser -S -D -H -u 10001 -G notify notify
COPY --from=build /out/notification-service /usr/local/bin/notification-service
ENV PORT=8080
EXPOSE 8080
# Numeric, so an orchestrator enforcing runAsNonRoot can check it.
USER 10001:10001
# Shell form, so PORT is read when the check runs; 127.0.0.1 rather than
# localhost, which may resolve to ::1 first.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
	CMD wget -q --spider "http://127.0.0.1:${PORT:-8080}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/notification-service"]
