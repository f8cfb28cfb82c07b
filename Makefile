# Front door of the build: CMake does the work, these targets are the
# commands people type. `make run` and `make test` install missing Debian
# packages first (scripts/install-deps, as root).

BUILD      ?= build
BUILD_TEST ?= build-test
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
DATA_DIR   ?= ./data
# make run-pg: its own data directory (the read side, and the PostgreSQL
# cluster under it) and the cluster's loopback port.
PG_DATA_DIR ?= ./data-pg
PG_PORT     ?= 55432

.PHONY: all deps build run run-pg test clean

all: build

deps:
	@./scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: deps build
	@mkdir -p $(DATA_DIR)
	./$(BUILD)/wallex serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# The same on the PostgreSQL store, with a throwaway cluster under
# $(PG_DATA_DIR)/postgres that starts and stops with the server.
run-pg: deps build
	./scripts/run-pg ./$(BUILD)/wallex $(LISTEN) $(PG_DATA_DIR) $(PG_PORT)

# Tests build separately with -Werror and ASan+UBSan so the release binary
# stays fast and the tested one stays strict.
test: deps
	@cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DWALLEX_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_TEST) -j $(JOBS)
	@cd $(BUILD_TEST) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_TEST)
