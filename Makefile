# Thin wrapper over CMake. `make` builds Release into build/; `make test` installs
# what is missing (tools/bootstrap.sh), builds and runs the tests through ctest.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build configure test demo bench bootstrap clean

all: build

bootstrap:
	@tools/bootstrap.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: bootstrap
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure

demo: bootstrap
	$(MAKE) build
	$(BUILD)/bin/minivl demo

bench: bootstrap
	$(MAKE) build
	@for b in $(BUILD)/bin/bench_*; do echo "== $$b"; $$b --benchmark_min_time=0.2 || exit 1; done

clean:
	rm -rf $(BUILD)
