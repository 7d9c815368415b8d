# The two commands of the README, and their helpers. Each installs what it needs first.
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup build run demo test test-asan bench bench-quick bench-setup clean

setup:
	@./scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: the daemon with the default config (config/pointexd.json) on ./data, in the
# foreground; Ctrl-C stops it cleanly. The demo of the embedding API is `make demo`.
run: build
	./$(BUILD_DIR)/pointexd --config config/pointexd.json

demo: build
	./$(BUILD_DIR)/pointex-demo --data-dir ./data

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 600

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
test-asan: setup
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPOINTEX_SANITIZE=ON \
	  -DPOINTEX_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j 2 --timeout 600

# PointEx and the PostgreSQL 15 baseline side by side, W1-W4 (bench/run.py): a table on stdout,
# results/<timestamp>/ with results.json, table.txt and SVG charts. About 20 minutes; the quick
# smoke check takes under two. More options: BENCH_ARGS="--repeat 1 --clients 16,64" etc.
# (python3 bench/run.py --help).
BENCH_ARGS ?=
bench-setup:
	@./scripts/setup.sh bench

bench: build bench-setup
	python3 bench/run.py --build-dir $(BUILD_DIR) $(BENCH_ARGS)

bench-quick: build bench-setup
	python3 bench/run.py --build-dir $(BUILD_DIR) --quick $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
