# Thin wrapper over CMake. `make` builds Release into build/; `make test` installs
# what is missing (tools/bootstrap.sh), builds and runs the tests through ctest.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build configure test demo bench figures bootstrap clean test-asan test-tsan fuzz fuzz-ci fuzz-build

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
	cd $(BUILD) && ctest --output-on-failure --verbose

# CLIP end to end on the shapes world (docs/clip.md): data, training, evaluation,
# zero-shot on held-out images, and the loss/eval plot (when matplotlib is there).
DEMO_RUN ?= runs/clip_shapes
# The shapes world the demo and configs/*_shapes.toml use (the data.generate_* defaults); an older
# version in datasets/shapes is regenerated.
SHAPES_N ?= 24000
demo: bootstrap
	$(MAKE) build
	@start=$$(date +%s); \
	$(BUILD)/bin/minivl gen-shapes --out datasets/shapes --n $(SHAPES_N) --seed 1 --size 64 --unless-current || exit 1; \
	rm -rf $(DEMO_RUN); \
	$(BUILD)/bin/minivl train configs/clip_shapes.toml --run-dir $(DEMO_RUN) || exit 1; \
	echo "== zero-shot on the held-out single-shape images (40 colour x shape classes)"; \
	$(BUILD)/bin/minivl eval --model $(DEMO_RUN)/model --task zeroshot --data datasets/shapes || exit 1; \
	echo "== retrieval on the held-out images"; \
	$(BUILD)/bin/minivl eval --model $(DEMO_RUN)/model --task retrieval --data datasets/shapes --limit 500 || exit 1; \
	echo "== minivl zeroshot on three held-out images"; \
	imgs=$$(python3 -c 'import json; c = json.load(open("datasets/shapes/classes.json")); t = set(json.load(open("datasets/shapes/splits.json"))["test"]); print(" ".join(["--image datasets/shapes/" + i["file_name"] for i in c["images"] if i["image_id"] in t][:3]))'); \
	labels=$$(python3 -c 'import json; print(",".join(json.load(open("datasets/shapes/classes.json"))["classes"]))'); \
	$(BUILD)/bin/minivl zeroshot --model $(DEMO_RUN)/model $$imgs --labels "$$labels" --templates configs/shapes_templates.txt --top 3 || exit 1; \
	python3 tools/plot_metrics.py $(DEMO_RUN) || echo "(no plot: install python3-matplotlib for $(DEMO_RUN)/metrics.png)"; \
	echo "== demo done in $$(( $$(date +%s) - start ))s: model folder $(DEMO_RUN)/model, metrics $(DEMO_RUN)/metrics.jsonl, plot $(DEMO_RUN)/metrics.png"

# The Python that has matplotlib and numpy (Debian's python3-matplotlib; a pyenv or venv python3 earlier
# on PATH may not see it).
PYTHON ?= $(shell for p in python3 /usr/bin/python3; do $$p -c 'import matplotlib, numpy' 2>/dev/null && { echo $$p; exit; }; done; echo python3)

# Every benchmark into bench/results/<date>-<machine>/ (JSON, machine.json) and its report.md with
# figures (tools/bench_run.sh; BENCH_FULL=1 for every row, BENCH_ONLY="bench_gemm ..." for some).
bench: bootstrap
	$(MAKE) build
	@PYTHON=$(PYTHON) tools/bench_run.sh $(BUILD)

# The lessons' figures (docs/figures/*.png) and the README's roofline from the committed H100 run.
figures:
	$(PYTHON) docs/figures/make_figures.py
	$(PYTHON) tools/bench_report.py bench/results/2026-11-27-h100
	cp bench/results/2026-11-27-h100/figures/roofline-gpu.png docs/figures/roofline-h100.png

# ---- hardening (docs/hardening.md) ----
# Sanitizer builds: g++, no CUDA, own build dirs; only the CLI and the test binary.
# -O1 -g1: about the usual sanitizer speed at a shorter compile; line tables for the reports.
SAN_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMINIVL_CUDA=OFF -DMINIVL_NATIVE=OFF
# ASAN_ARGS: doctest filters. Default: every test but the N = 65536 contrastive-loss memory test
# (550 GFLOP: hours with the portable scalar GEMM under ASan; the normal build runs it).
ASAN_ARGS ?= --test-case-exclude='*N = 65536*'
ASAN_ENV  = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# TSan: libgomp is not TSan-instrumented, so OpenMP runs with one thread and the
# suites below are the ones whose threads are our own (loader, data, tokenizer, parsers).
# test_data_shapes asks OpenMP for threads explicitly (the generator's determinism test), so it is out.
TSAN_FILES ?= *test_data_*,*test_tokenizer*,*test_safetensors*,*test_nn_config*,*test_nn_checkpoint*,*test_nn_trainer*,*test_cli_errors*
TSAN_EXCLUDE ?= *test_data_shapes*
TSAN_ENV  = OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1

test-asan: bootstrap
	cmake -S . -B build-asan $(SAN_CMAKE) -DMINIVL_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS) --target minivl minivl_tests
	cd build-asan && $(ASAN_ENV) ./bin/minivl_tests $(ASAN_ARGS)

test-tsan: bootstrap
	cmake -S . -B build-tsan $(SAN_CMAKE) -DMINIVL_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS) --target minivl minivl_tests
	cd build-tsan && $(TSAN_ENV) ./bin/minivl_tests --source-file='$(TSAN_FILES)' --source-file-exclude='$(TSAN_EXCLUDE)'

# libFuzzer: clang, ASan + UBSan, one executable per parser in build-fuzz/bin/fuzz_*.
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 20
FUZZ_CMAKE = $(SAN_CMAKE) \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMINIVL_FUZZ=ON -DMINIVL_SANITIZE=address,undefined

fuzz-build: bootstrap
	cmake -S . -B build-fuzz $(FUZZ_CMAKE)
	cmake --build build-fuzz -j $(JOBS) --target minivl_fuzz_all

fuzz: fuzz-build
	tests/fuzz/run_fuzzers.sh build-fuzz/bin $(FUZZ_SECONDS)

fuzz-ci: fuzz-build
	tests/fuzz/run_fuzzers.sh build-fuzz/bin $(FUZZ_CI_SECONDS)

clean:
	rm -rf $(BUILD)
