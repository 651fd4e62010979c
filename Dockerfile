# syntax=docker/dockerfile:1
# ferry's own image: the four binaries on a small Debian base, non-root.
# Build for both platforms (natively or under QEMU):
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/acme/ferry:dev .

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY bins/ bins/
COPY tests/ tests/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/ferry-registry target/release/ferry-detect \
       target/release/ferry-bump target/release/ferry-deploy /out/

FROM debian:bookworm-slim AS runtime
# libssl3 for git2's https, git for fetching blobs of partial clones, CA certificates.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin ferry
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
CMD ["ferry-registry", "--help"]
