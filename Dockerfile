# syntax=docker/dockerfile:1
# cebridge container image: multi-stage, production dependencies only, non-root, tini as PID 1.
# Build:  docker build -t cebridge .
# Run:    docker run -p 8080:8080 -p 8081:8081 -v $PWD/my.yaml:/etc/cebridge/cebridge.yaml:ro cebridge
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY connectors ./connectors
COPY test ./test
COPY config ./config
RUN npx tsc -p tsconfig.json && rm -rf dist/test

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    CEBRIDGE_CONFIG=/etc/cebridge/cebridge.yaml
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config ./config
# The embedded default, overridable by mounting a file at /etc/cebridge/cebridge.yaml. In a container
# the HTTP source must listen on all interfaces, so the baked-in copy does.
RUN mkdir -p /etc/cebridge /var/lib/cebridge \
 && sed -e 's/listen: "127.0.0.1:8080"/listen: "0.0.0.0:8080"/' -e 's/listen: "127.0.0.1:8081"/listen: "0.0.0.0:8081"/' \
        config/default.yaml > /etc/cebridge/cebridge.yaml \
 && chown -R node:node /var/lib/cebridge
USER node
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8081/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/src/main.js"]
CMD ["run"]
