# Every target installs and builds what it needs, so each works on a fresh clone.
NPM ?= npm
STAMP := node_modules/.tandem-installed

.PHONY: install build test demo bench clean

$(STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: $(STAMP)

build: install
	$(NPM) run build

test: build
	npx tsc -p tsconfig.test.json
	@rm -f dist/test-report.json
	npx vitest run --reporter=default --reporter=json --outputFile.json=dist/test-report.json; \
	  status=$$?; [ -f dist/test-report.json ] && node e2e/summary.cjs dist/test-report.json; exit $$status

demo: build
	node dist/cli/tandem.js demo

bench: build
	node dist/bench/run.js

clean:
	rm -rf dist node_modules
