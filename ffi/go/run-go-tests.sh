#!/bin/sh
# Installs libsaferoot into a temporary prefix and runs the Go package's
# checks and tests against it through pkg-config (`#cgo pkg-config:
# saferoot`): gofmt, go vet, the documented example (built, checked to be
# the one docs/go.md shows, and run in a private mount namespace), then
# `go test ./...`, whose tests make real mounts.
#
# Needs root, Go >= 1.19 (Debian: golang-go), gcc, pkg-config and
# util-linux's unshare.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ffi=$(dirname "$here")
repo=$(dirname "$ffi")
work=$(mktemp -d /tmp/saferoot-go-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

"$ffi/install.sh" "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CGO_ENABLED=1
# go needs a build cache; without HOME (some CI environments) keep it here.
if [ -z "${HOME:-}" ]; then
    export GOCACHE="${GOCACHE:-$work/go-cache}" GOPATH="${GOPATH:-$work/go-path}"
fi
# The module has no dependencies: never reach for a module proxy.
export GOFLAGS="${GOFLAGS:--mod=mod}" GOPROXY="${GOPROXY:-off}"
# Find libsaferoot.so.0 in the temporary prefix at run time.
export CGO_LDFLAGS="-Wl,-rpath,$prefix/lib${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
go version

cd "$here"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
    echo "not gofmt-formatted: $unformatted" >&2
    exit 1
fi
go vet ./...

echo "== example"
"$ffi/tests/check-doc-example.sh" "$repo/docs/go.md" ffi/go/cmd/saferoot-example/main.go
go build -o "$work/saferoot-example" ./cmd/saferoot-example
mkdir -p "$work/rootfs"
unshare --mount --propagation private "$work/saferoot-example" "$work/rootfs"

echo "== go test"
go test -count=1 -v ./...
