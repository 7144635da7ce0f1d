# roost — the two commands a user needs are `make demo` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds each harness runs (docs/fuzzing.md).
FUZZ_SECONDS ?= 120
# Found inputs (crash-*, leak-*, …) and each harness's log go here.
FUZZ_OUT   ?= $(FUZZ_BUILD)/findings
JOBS       ?= $(shell nproc)
# make install: where (PREFIX) and under which staging root (DESTDIR, for packages).
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps build install demo test test-fast test-asan test-fuzz fuzz fuzz-build torture bench screenshots clean

all: build

deps:
	./scripts/install-deps

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The binary, the dashboard, the bash completion, the docs and the systemd units
# under DESTDIR/PREFIX (docs/operations.md). Builds first if needed (as the
# configured build: a build made with -DROOST_WEB=OFF installs no dashboard).
install:
	@test -f $(BUILD)/CMakeCache.txt || $(MAKE) build
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# Installs packages, builds, and runs a hub on loopback with a demo login.
demo: deps build
	@./scripts/put-on-path $(BUILD)/roost
	./$(BUILD)/roost demo --data demo-data

# Unit and integration tests, then the same suite under ASan + UBSan, then
# each fuzzer briefly (tests/fuzz: about 12 s each).
test: deps
	$(MAKE) test-fast
	$(MAKE) test-asan
	$(MAKE) test-fuzz

# Two tests at a time on CI's two cores: every test takes its own ports and temp
# dir, and waits for readiness rather than sleeping, so they do not disturb each other.
test-fast: build
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure --timeout 900

# The sanitizer pass: every test on SQLite, and on PostgreSQL the variants labelled
# pg_asan (CMakeLists.txt) — the plain pass runs all of them on both back ends.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DROOST_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && $(ASAN_ENV) ctest -j $(JOBS) --output-on-failure --timeout 1800 -LE '^pg$$'
	cd $(ASAN_BUILD) && $(ASAN_ENV) ctest -j $(JOBS) --output-on-failure --timeout 1800 -L pg_asan

# libFuzzer harnesses (tests/fuzz, docs/fuzzing.md): a separate clang build.
fuzz-build:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DROOST_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

test-fuzz: fuzz-build
	cd $(FUZZ_BUILD) && ctest -L fuzz --output-on-failure

# Each harness for FUZZ_SECONDS on a copy of its corpus; stops at the first finding.
fuzz: deps fuzz-build
	@mkdir -p $(FUZZ_OUT)
	@for f in $(FUZZ_BUILD)/fuzz_*; do \
		n=$${f##*/fuzz_}; echo "== $$n ($(FUZZ_SECONDS) s)"; \
		tests/fuzz/run.sh $$f tests/fuzz/corpus/$$n $(FUZZ_SECONDS) $(FUZZ_OUT)/$$n \
			>$(FUZZ_OUT)/$$n.log 2>&1 || { tail -40 $(FUZZ_OUT)/$$n.log; exit 1; }; \
		grep -E '^#[0-9]+.*DONE|average_exec_per_sec' $(FUZZ_OUT)/$$n.log; \
	done

# Crash points at full size (docs/reliability.md, "Crashes"; not in `make test`):
# TORTURE_POINTS kill points on SQLite, then as many on PostgreSQL, then (SQLite)
# a `hosts`-storage workspace (strict: a version another host applied must keep a
# copy) and the hub's store in an S3 bucket (s3rver); each
# run printing its seed (ROOST_SEED=N replays one) and a summary. Then randomized
# convergence ("Randomized convergence"): CONVERGENCE_SEEDS seeds of
# CONVERGENCE_ROUNDS rounds on each back end.
TORTURE_POINTS ?= 200
CONVERGENCE_ROUNDS ?= 25
CONVERGENCE_SEEDS ?= 8
torture: deps build
	for run in "ROOST_TEST_DB=sqlite" "ROOST_TEST_DB=postgres" \
	           "ROOST_TORTURE_STORAGE=hosts ROOST_TORTURE_STRICT=1" "ROOST_TEST_STORE=s3"; do \
		env $$run ROOST_BIN=$(CURDIR)/$(BUILD)/roost \
		PYTHONPATH=$(CURDIR)/tests/integration \
		python3 tests/integration/torture.py $(TORTURE_POINTS) || exit 1; \
	done
	for db in sqlite postgres; do \
		ROOST_TEST_DB=$$db ROOST_BIN=$(CURDIR)/$(BUILD)/roost \
		PYTHONPATH=$(CURDIR)/tests/integration \
		python3 tests/integration/convergence.py $(CONVERGENCE_ROUNDS) \
			$(CONVERGENCE_SEEDS) || exit 1; \
	done

# The browser test's screenshots of each page, into docs/screenshots/.
screenshots: build
	cd $(BUILD) && ctest -R '^browser_[a-z]+$$' --output-on-failure
	cp $(BUILD)/screenshots/*.png docs/screenshots/

bench: deps build
	./bench/run.sh $(BUILD)/roost

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
