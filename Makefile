# strata — see README.md. Every target does its own set-up on a fresh clone.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
STRATA := dist/cli/main.js
DEMO_ROOT ?= $(CURDIR)/.tmp/demo-store

.PHONY: all build typecheck lint format test test-unit test-integration conformance demo bench clean deps

all: build

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES)

build: $(NODE_MODULES)
	npx tsc -p tsconfig.json
	node scripts/bundle-cli.mjs

typecheck: $(NODE_MODULES)
	npx tsc -p tsconfig.test.json --noEmit

# Biome (biome.json): lint plus a check that every file is formatted. `make format` rewrites the files.
lint: $(NODE_MODULES)
	npx biome check .

format: $(NODE_MODULES)
	npx biome format --write .

# Unit and integration tests. Integration tests start their own registries on 127.0.0.1 and need
# skopeo, umoci and docker-registry (scripts/install-test-tools.sh installs them with apt-get).
test: build
	npx tsc -p tsconfig.test.json --noEmit
	npx biome check .
	npx vitest run

test-unit: build
	npx vitest run test/unit

test-integration: build
	npx vitest run test/integration

# Public corpora in ../shared/conformance (BuildKit parser and shell cases, reference and
# .dockerignore tables, OCI JSON schemas). Needs that folder; `make test` does not.
conformance: build
	npx vitest run --config vitest.conformance.config.ts

# The main job: builds testdata/demo/Dockerfile (two stages, no RUN) into a local store under .tmp/ and
# an OCI layout, and inspects it; then assembles an image from plain directories with `append`.
# No registry, no daemon, no root.
demo: build
	rm -rf $(DEMO_ROOT) .tmp/demo-layout .tmp/demo-append-layout
	STRATA_ROOT=$(DEMO_ROOT) SOURCE_DATE_EPOCH=1700000000 $(STRATA) build testdata/demo \
	  -t strata-demo:latest -o type=image -o type=oci,dest=.tmp/demo-layout,tar=false
	STRATA_ROOT=$(DEMO_ROOT) $(STRATA) images
	STRATA_ROOT=$(DEMO_ROOT) $(STRATA) inspect strata-demo:latest
	STRATA_ROOT=$(DEMO_ROOT) SOURCE_DATE_EPOCH=1700000000 $(STRATA) append \
	  --layer testdata/demo/rootfs \
	  --layer testdata/demo/site:/srv/www \
	  --set-env GREETING=hello --set-label org.opencontainers.image.title=strata-demo-append \
	  --set-workdir /srv/www --set-expose 8080 --set-cmd '["/bin/demo","--serve"]' \
	  -t strata-demo-append:latest -o oci:.tmp/demo-append-layout:strata-demo-append
	STRATA_ROOT=$(DEMO_ROOT) $(STRATA) images

# Benchmarks, each printing a table of ratios against a peer run in the same script:
# transfer (push/pull vs skopeo), RUN steps (vs buildah), whole builds (vs buildah and tar | pigz).
bench: build
	bash scripts/install-test-tools.sh
	bash bench/transfer.sh && bash bench/run.sh && bash bench/build.sh && bash bench/realbase.sh && bash bench/sbom.sh

clean:
	rm -rf dist .tmp
