# The image of nubo's own components on Kubernetes (`nubo serve gateway`,
# `nubo serve events`, ...), as `nubo render` emits them. Build: make image.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static: no libc at run time, so the smallest base image runs it.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/nubo ./cmd/nubo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nubo /usr/local/bin/nubo
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/nubo"]
