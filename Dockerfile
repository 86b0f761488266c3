# syntax=docker/dockerfile:1
# rocketgate container image.
#
#   docker build -t rocketgate:0.1.0 .
#   docker run --rm rocketgate:0.1.0 --version
#
# Builder: the official Rust image on Debian 12 (bookworm), so the glibc the binary links
# against is the one in the runtime image below. 1.95 is the toolchain the project is built
# and tested with. aws-lc-rs needs a C compiler and jemalloc also make, which this image has.
# Pin by digest (rust:1.95-bookworm@sha256:...) in your own registry mirror if you need
# byte-for-byte reproducible builds.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# 1. Dependencies only: a stub crate with the real manifest and lock file. This layer is
#    rebuilt only when Cargo.toml or Cargo.lock change, not on every source edit. The image
#    is built without the `demo` feature: the stand-in and demo app (crates/demo) are for
#    trying rocketgate out and for tests, not for production; cargo still reads the
#    workspace member's manifest, so it is copied, with an empty library.
COPY Cargo.toml Cargo.lock ./
COPY crates/demo/Cargo.toml crates/demo/
RUN mkdir -p src crates/demo/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/demo/src/lib.rs \
    && cargo build --profile dist --locked --no-default-features \
    && rm -rf src

# 2. The real sources. touch: make sure cargo rebuilds the crate over the stub's artefacts.
#    ROCKETGATE_COMMIT names the commit in rocketgate_build_info
#    (docker build --build-arg ROCKETGATE_COMMIT=$(git rev-parse --short HEAD) .).
ARG ROCKETGATE_COMMIT=unknown
ENV ROCKETGATE_COMMIT=${ROCKETGATE_COMMIT}
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --profile dist --locked --no-default-features \
    && ./target/dist/rocketgate --version

# Runtime: distroless "cc" (glibc, libgcc, CA certificates for the calls to Rocketpunch; no
# shell, no package manager), the nonroot variant (UID/GID 65532).
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rocketgate" \
      org.opencontainers.image.description="Authenticating reverse proxy for apps whose users sign in with Rocketpunch" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.documentation="docs/deploy.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /src/target/dist/rocketgate /usr/local/bin/rocketgate

# Where the Kubernetes manifests and the Helm chart mount the configuration.
ENV ROCKETGATE_CONFIG=/etc/rocketgate/rocketgate.toml
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 4180
# rocketgate drains on SIGTERM: /ready fails, requests are served for shutdown_delay, then
# in-flight requests get shutdown_timeout. Docker's default is SIGTERM too; said explicitly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/rocketgate"]
