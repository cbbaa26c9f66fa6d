# Every target installs and builds what it needs, so each works on a fresh clone.
NPM ?= npm
STAMP := node_modules/.tandem-installed

.PHONY: install build test demo bench bench-xds soak clean tools nginx

$(STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: $(STAMP)

build: install
	$(NPM) run build

# e2e/prometheus.test.ts scrapes the sidecars with a real Prometheus (Debian's package). Where
# it is missing and apt-get can be used (root), it is installed; where not, that one suite says
# it is skipped. Only the install is best effort: the tests' own status is never hidden.
tools:
	@command -v prometheus >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  echo "installing Debian's prometheus for e2e/prometheus.test.ts" && \
	  timeout 300 apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } || \
	  echo "prometheus not installed: e2e/prometheus.test.ts will be skipped"

test: build tools
	npx tsc -p tsconfig.test.json
	@rm -f dist/test-report.json
	npx vitest run --reporter=default --reporter=json --outputFile.json=dist/test-report.json; \
	  status=$$?; [ -f dist/test-report.json ] && node e2e/summary.cjs dist/test-report.json; exit $$status

demo: build
	node dist/cli/tandem.js demo

# make bench compares the sidecar with nginx (Debian's package): installed the same best-effort
# way where missing; where it cannot be, the bench says so and skips the nginx rows.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  echo "installing Debian's nginx for make bench" && \
	  timeout 300 apt-get install -y -q --no-install-recommends nginx >/dev/null 2>&1; } || \
	  echo "nginx not installed: make bench will skip the nginx rows"

bench: build nginx
	node dist/bench/run.js

# The control plane at scale: N simulated sidecars (XDS_BENCH_N=100,500 for a quick run).
bench-xds: build
	node dist/bench/xds-run.js

# Not part of `make test`: 10 minutes (SOAK_SECONDS to shorten, SOAK_RATE for the req/s) of a
# steady rate through a mesh whose certificates rotate every ~10 s and whose config changes every
# 30 s; fails if one request fails or a sidecar's or the control plane's RSS grows more than 10%.
soak: build
	node dist/bench/soak.js

clean:
	rm -rf dist node_modules
