# roost — the two commands a user needs are `make demo` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all deps build demo test test-fast test-asan bench screenshots clean

all: build

deps:
	./scripts/install-deps

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Installs packages, builds, and runs a hub on loopback with a demo login.
demo: deps build
	./$(BUILD)/roost demo --data demo-data

# Unit and integration tests, then the same suite under ASan + UBSan.
test: deps
	$(MAKE) test-fast
	$(MAKE) test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DROOST_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure --timeout 1800

# The browser test's screenshots of each page, into docs/screenshots/.
screenshots: build
	cd $(BUILD) && ctest -R browser_dashboard --output-on-failure
	cp $(BUILD)/screenshots/*.png docs/screenshots/

bench: deps build
	./bench/run.sh $(BUILD)/roost

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
