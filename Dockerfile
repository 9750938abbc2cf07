# syntax=docker/dockerfile:1
# claimlint's container image. Multi-stage: the dependency layer is built from the manifests
# alone (cached until Cargo.toml/Cargo.lock change), then claimlint itself; the runtime image is
# distroless (glibc, CA roots, no shell), runs as a non-root user and holds only the binary,
# with the rule data compiled in (and a copy under /usr/share/claimlint/rules for overrides).
# scripts/check-deploy checks that the cargo commands below are the ones scripts/test runs.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# 1. Dependencies: the manifests, the build script and proto with empty targets and no rules.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir -p src benches rules \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/core.rs \
 && echo 'fn main() {}' > benches/tables.rs
RUN cargo build --release --locked --bin claimlint

# 2. claimlint: the sources, the rule data (embedded by build.rs) and the seed visit example
# (`wire::sample` builds it in for tests and the load generator). `touch` because COPY keeps
# the context's timestamps, older than the dependency layer's stub build.
COPY src ./src
COPY rules ./rules
COPY examples/valid-medicare-seed-visit.json ./examples/
RUN touch build.rs src/main.rs src/lib.rs
RUN cargo build --release --locked --bin claimlint

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/claimlint /usr/local/bin/claimlint
COPY rules /usr/share/claimlint/rules
# distroless's nonroot user (65532); the Kubernetes manifests run it read-only.
USER 65532:65532
ENV CLAIMLINT_LOG_FORMAT=json \
    CLAIMLINT_ADDR=http://127.0.0.1:50051
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
# gRPC health of the server at CLAIMLINT_ADDR (change it with CLAIMLINT_GRPC_ADDR's port). With
# TLS: CLAIMLINT_ADDR=https://localhost:50051 and CLAIMLINT_CLIENT_TLS_CA, plus
# CLAIMLINT_CLIENT_TLS_CERT/_KEY for mutual TLS and _SERVER_NAME when the certificate names
# another host.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/claimlint", "healthcheck", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/claimlint"]
CMD ["serve"]
