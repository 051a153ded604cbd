# Two entry points: `make demo` and `make test`. Each installs what is missing, builds, then runs.
BUILD   ?= build
JOBS    ?= $(shell nproc)
DEBS    := build-essential cmake pkg-config libhwy-dev libeigen3-dev nlohmann-json3-dev libcli11-dev libfmt-dev \
           libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev liblapacke-dev libomp-dev clang libclang-rt-14-dev libicu-dev \
           libpng-dev chromium xz-utils
LOWBIT  := $(BUILD)/lowbit

.PHONY: demo test deps build fuzz clean

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(LOWBIT)

clean:
	rm -rf $(BUILD)
