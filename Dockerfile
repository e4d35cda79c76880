# shoal node image: one image, two roles.
#   web:     docker run … shoal                       (the default CMD, port 3000)
#   gateway: docker run -e PORT=4000 … shoal node bin/shoal.js gateway --app examples/probe/shoal.app.js
# It runs the probe app (examples/probe), which cluster tests and the deploy files use; an app of
# your own builds the same way with its module in place of examples/probe/shoal.app.ts.
# Validated statically only (test/deploy/manifests.test.ts): no Docker engine runs in this repo's CI.

# ---- build: compile the library (dist/) and the app module (to plain JS) ----
FROM node:20-slim AS build
WORKDIR /src
# Dependencies first: `npm ci` builds nothing, so a change to the sources does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# What `npm run build` (scripts/build.mjs) reads: the sources, the configs, the OpenAPI document it copies.
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY docs/server-api.openapi.json ./docs/
COPY src ./src
COPY examples ./examples
# The app module is compiled with the files it imports, keeping its relative paths
# (../../src/…); the runtime stage points src/ at dist/ so both load the same modules.
RUN npm run build \
 && npx tsc --outDir build/app --rootDir . --module nodenext --moduleResolution nodenext --target es2022 \
      --skipLibCheck --sourceMap false --declaration false examples/probe/shoal.app.ts

# ---- runtime ----
FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# node_modules comes whole from the build stage: the probe's express and the backend clients
# (ioredis, pg, nats, amqplib, memjs) are devDependencies of the library. An app image of
# your own runs `npm ci --omit=dev` on its own package.json here instead.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/app/examples ./examples
COPY bin ./bin
RUN ln -s dist src \
 && mkdir -p .shoal \
 && chown node:node .shoal
# The official image's unprivileged user (uid 1000); nothing under /app is writable but .shoal/.
USER node
EXPOSE 3000
# Liveness only (/healthz): Docker restarts nothing on "unhealthy", and an orchestrator that
# routes traffic asks /readyz itself (see deploy/compose.yaml and deploy/k8s/).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the drain (readiness false, finish in-flight requests, exit); give the
# container more than SHOAL_DRAIN_TIMEOUT to stop (compose stop_grace_period, k8s grace period).
STOPSIGNAL SIGTERM
CMD ["node", "bin/shoal.js", "web", "--app", "examples/probe/shoal.app.js"]
