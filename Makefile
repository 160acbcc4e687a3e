# ddm build. `make` builds build/ddm, build/libddm.a and build/libddm.so; `make test` builds and runs
# every test (C unit tests, PyTorch-twin parity, CLI tests). `make cuda` (= `make CUDA=1`) builds the same with
# the CUDA backend (--device cuda, src/ops/cuda, nvcc from CUDA_HOME) and the GPU tests (tests/gpu, not part of
# `make test`: tests/gpu/run.sh runs them). Switching between the two rebuilds everything (build/.config).
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
CFLAGS  ?= -O3 -march=native -fno-math-errno
CFLAGS  += -std=gnu11 -Wall -Wextra -fopenmp -fPIC -Iinclude -Isrc -I/usr/include/stb -MMD -MP
LDLIBS  = -lopenblas -llapacke -lcjson -lstb -lz -lm -fopenmp

LIB_SRC  := $(shell find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/ops/cuda/*' | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' -not -path 'tests/gpu/*' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=build/%.o)
TESTS    := $(TEST_SRC:tests/%.c=build/tests/%)

# The CUDA backend: Hopper (sm_90) machine code plus compute_90 PTX, so that later GPUs can JIT it.
CUDA      ?= 0
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS ?= -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-fPIC -Iinclude -Isrc -MMD -MP
GPU_TESTS :=
ifeq ($(CUDA),1)
CFLAGS   += -DDDM_CUDA
CU_SRC   := $(shell find src/ops/cuda -name '*.cu' | sort)
LIB_OBJ  += build/src/ops/cuda/cuda_table.o $(CU_SRC:%.cu=build/%.o)
# static cudart (nvcc's default), the cuBLAS libraries found at run time through the rpath
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcudart_static -ldl -lrt -lpthread -lstdc++
GPU_TESTS := $(patsubst tests/%.c,build/tests/%,$(sort $(wildcard tests/gpu/test_*.c)))
endif

# Objects depend on the build configuration, so that `make` after `make cuda` (or back) rebuilds them.
CONFIG_STAMP := build/.config
CONFIG_NOW   := CUDA=$(CUDA) CFLAGS=$(CFLAGS)
ifeq ($(filter cuda clean,$(MAKECMDGOALS)),)
$(shell mkdir -p build && (test "$$(cat $(CONFIG_STAMP) 2>/dev/null)" = '$(CONFIG_NOW)' || echo '$(CONFIG_NOW)' > $(CONFIG_STAMP)))
endif

all: build/ddm build/libddm.so $(GPU_TESTS)

cuda:
	$(MAKE) CUDA=1 all

build/libddm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

build/libddm.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

build/ddm: $(CLI_OBJ) build/libddm.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) build/libddm.a $(LDLIBS)

build/%.o: %.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/%.o: %.cu $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

build/tests/%: tests/%.c tests/test.h build/libddm.a $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< build/libddm.a $(LDLIBS)

# Reference values from the PyTorch twin (Debian's python3-torch), regenerated when the twin changes.
build/ref/.stamp: tools/twin.py tools/twin_model.py tools/st.py
	@mkdir -p build/ref
	$(PYTHON) tools/twin.py --out build/ref
	touch $@

# Random Inception-v3 weights and their PyTorch features (torchvision's blocks and pytorch-fid's) for
# test_inception and the eval tests. Without torchvision the script writes SKIP instead (no stamp, so
# the next make tries again).
build/ref/inception/.stamp: tools/inception_convert.py tools/st.py
	@mkdir -p build/ref/inception
	$(PYTHON) tools/inception_convert.py --random 0 --flavour both --out build/ref/inception
	@if [ ! -f build/ref/inception/SKIP ]; then touch $@; fi

tests: $(TESTS) build/ddm build/ref/.stamp build/ref/inception/.stamp

test: tests
	bash tools/run_tests.sh

# Speed figures (see docs/performance.md); not part of the tests.
bench: build/ddm
	./build/ddm bench --model all

clean:
	rm -rf build

.PHONY: all cuda test tests bench clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(GPU_TESTS:=.d)
