# Thin driver over CMake. `make run` runs the demo; `make test` runs every test under
# AddressSanitizer and UndefinedBehaviorSanitizer, then the conformance suite (the official
# JavaScript SDK against `dtask serve`), and installs into a scratch prefix to build the
# README's example with pkg-config. Both install missing Debian packages first.
# `make install PREFIX=/usr/local` installs the headers, libraries and durabletask.pc.
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local

.PHONY: all deps build run test fuzz install bench bench-peers clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDT_TESTS=OFF >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	./build/dtask demo

install: build
	@cmake --install build --prefix "$(PREFIX)"

test: deps
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DDT_SANITIZE=ON >/dev/null
	@cmake --build build-test -j $(JOBS)
	cd build-test && ctest --output-on-failure -j 2
	bash tests/conformance/run.sh build-test/dtask
	bash tests/conformance/run-pg.sh build-test/dtask
	bash tests/http/run.sh build-test/dtask
	bash tests/browser/run.sh build-test/dtask
	bash tests/install/run.sh

# Each libFuzzer target for FUZZ_SECONDS from its corpus in fuzz/ (clang; not part of test,
# which runs the saved inputs only): fuzz/README.md
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench: deps
	bash bench/run.sh

# Restate and DBOS (../shared/peers, when it is there) and ours side by side: bench/PEERS.md
bench-peers: deps
	bash bench/peers.sh

clean:
	rm -rf build build-test build-fuzz
