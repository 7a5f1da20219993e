# syntax=docker/dockerfile:1
# cebridge container image: multi-stage; the runtime is distroless Node.js (the current LTS, 24) with
# production dependencies only, no shell and no package manager, running as the non-root user 65532.
#
#   docker build -t cebridge .
#   docker run --read-only -p 8080:8080 -p 8081:8081 \
#     -v $PWD/my.yaml:/etc/cebridge/cebridge.yaml:ro cebridge
#
# Signals: node itself is PID 1. cebridge installs SIGTERM/SIGINT handlers (drain, then exit 0; a
# second signal exits at once) and starts no child processes, so no init process is needed to reap
# zombies or forward signals. The root filesystem can be read-only: cebridge writes only where a
# config tells it to (file sinks), e.g. /var/lib/cebridge, a volume.
#
# test/e2e/container.test.ts reproduces the runtime stage's steps in a clean directory (npm ci
# --omit=dev from the lockfile, the built dist/, the baked config, user 65532, PID 1, nothing
# writable) and starts the daemon from the result.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY connectors ./connectors
COPY config ./config
COPY scripts/precompile-validators.mjs ./scripts/
# As `npm run build`: tsc, then the config validators precompiled (src/config/validators.ts).
RUN npx tsc -p tsconfig.json && node scripts/precompile-validators.mjs && rm -rf dist/.tsbuildinfo
# The embedded default, overridable by mounting a file at /etc/cebridge/cebridge.yaml. In a container
# the HTTP source and the admin server must listen on all interfaces, so the baked-in copy does.
RUN mkdir -p /out/etc/cebridge /out/var/lib/cebridge \
 && sed -e 's/listen: "127.0.0.1:8080"/listen: "0.0.0.0:8080"/' -e 's/listen: "127.0.0.1:8081"/listen: "0.0.0.0:8081"/' \
        config/default.yaml > /out/etc/cebridge/cebridge.yaml

FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies from the lockfile, without what only editors and debuggers read: source
# maps, TypeScript sources and declarations, Markdown (about 70 of 126 MiB). Only node_modules
# leaves this stage, so npm's cache stays behind.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.md' \) -delete

FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production \
    CEBRIDGE_CONFIG=/etc/cebridge/cebridge.yaml
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
COPY --from=build /out/etc/cebridge /etc/cebridge
COPY --from=build --chown=65532:65532 /out/var/lib/cebridge /var/lib/cebridge
USER 65532:65532
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:8081/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/main.js"]
CMD ["run"]
