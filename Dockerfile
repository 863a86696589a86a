# embed-star image: a release binary on Debian bookworm-slim, non-root, read-only-root friendly.
#   docker build -t embed-star .
#   docker run --env-file deploy.env -p 9090:9090 embed-star     (or `backfill`, `status`, ...)
# The image picks nothing for you: EMBEDDING_PROVIDER and EMBED_STAR_STORE must be set (without
# them it says so and exits 2). Secrets may come as files: DB_PASS_FILE, OPENAI_API_KEY_FILE, ...
# scripts/check-image builds and smoke-tests this file; CI checks its build context and libraries.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
# GRDB builds against the system SQLite.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Everything Package.swift declares: the plugin examples are targets of the product too, and the
# test targets' folders must exist for the manifest to load.
# Package.resolved: the dependency versions the tests ran with, not whatever resolves today.
COPY Package.swift Package.resolved ./
COPY Plugins ./Plugins
COPY Sources ./Sources
COPY Examples ./Examples
COPY Tests ./Tests
# What `--version` and embed_star_build_info say (the context has no .git to describe):
#   docker build --build-arg EMBED_STAR_VERSION=$(git describe --tags --always --dirty) -t embed-star .
ARG EMBED_STAR_VERSION=0.1.0+image
RUN EMBED_STAR_VERSION="$EMBED_STAR_VERSION" swift build -c release --product embed-star --static-swift-stdlib --force-resolved-versions \
 && install -D "$(swift build -c release --show-bin-path)/embed-star" /out/embed-star
# The image's configuration: the shipped plugins.yaml with no provider or store chosen, the SQLite
# file and caches under /data, the monitoring port open to the pod or host network.
COPY plugins.yaml /out/plugins.yaml
RUN sed -i -e 's/\${EMBEDDING_PROVIDER:-local}/${EMBEDDING_PROVIDER}/' \
           -e 's/\${EMBED_STAR_STORE:-sqlite}/${EMBED_STAR_STORE}/' \
           -e 's|\${SQLITE_PATH:-.embed-star/stars.sqlite}|${SQLITE_PATH:-/data/stars.sqlite}|' /out/plugins.yaml \
 && grep -q 'provider: ${EMBEDDING_PROVIDER}$' /out/plugins.yaml \
 && grep -q 'store: ${EMBED_STAR_STORE}$' /out/plugins.yaml \
 && grep -q 'SQLITE_PATH:-/data/stars.sqlite' /out/plugins.yaml

FROM ${RUNTIME_IMAGE}
# Exactly what the binary links beyond the base image (scripts/check-image --libraries checks it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-0 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin embedstar \
 && install -d -o 10001 -g 10001 /data
COPY --from=build /out/embed-star /usr/local/bin/embed-star
COPY --from=build /out/plugins.yaml /etc/embed-star/plugins.yaml
# /data is the only place written (SQLite, caches): a volume, so the root can be read-only.
VOLUME /data
WORKDIR /data
USER 10001:10001
ENV EMBED_STAR_CONFIG=/etc/embed-star/plugins.yaml MONITORING_BIND=0.0.0.0 MONITORING_PORT=9090 LOG_FORMAT=json
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/embed-star", "probe", "livez"]
ENTRYPOINT ["/usr/local/bin/embed-star"]
CMD ["run"]
