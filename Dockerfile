# embed-star: multi-stage build. The runtime image holds one static-stdlib binary and runs as
# a non-root user; its health check asks the monitoring server through the binary itself.
FROM swift:6.2-bookworm AS build
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product embed-star --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/embed-star" /out/embed-star

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin embedstar
COPY --from=build /out/embed-star /usr/local/bin/embed-star
COPY plugins.yaml /app/plugins.yaml
WORKDIR /app
USER 10001
ENV EMBED_STAR_CONFIG=/app/plugins.yaml MONITORING_BIND=0.0.0.0 MONITORING_PORT=9090
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/embed-star", "probe", "livez"]
ENTRYPOINT ["/usr/local/bin/embed-star"]
CMD ["run"]
