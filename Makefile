# ddm build. `make` builds build/ddm, build/libddm.a and build/libddm.so; `make test` builds and runs
# every test (C unit tests, PyTorch-twin parity, CLI tests on the cpu and cpu-isolated devices).
# `make MPI=1` builds with MPI (Open MPI's mpicc; data-parallel `mpirun ddm train`) into build-mpi/;
# `make SANITIZE=1` builds with ASan + UBSan into build-asan/ (tests/sanitize/run.sh); `make fuzz` the libFuzzer
# harnesses into build-fuzz/ (tests/fuzz/run.sh).
# BUILD=dir builds into another directory. `make install PREFIX=... [DESTDIR=...]` installs the build.
# `make cuda` (= `make CUDA=1`) builds the same with the CUDA backend (--device cuda, src/ops/cuda, nvcc from
# CUDA_HOME) and the GPU tests (tests/gpu, not part of `make test`: tests/gpu/run.sh runs them), in build/;
# switching between the two rebuilds everything there (build/.config).
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
VERSION := 0.1.0
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
MPI     ?=
ifeq ($(MPI),1)
CC      := mpicc
BUILD   ?= build-mpi
CFLAGS_EXTRA += -DDDM_MPI
endif
# `make SANITIZE=1`: AddressSanitizer + UndefinedBehaviorSanitizer (float-cast-overflow included; the first report
# aborts) into build-asan/, for tests/sanitize/run.sh.
SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
CFLAGS  ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
endif
BUILD   ?= build
# Portable: everything is built for the baseline x86-64 except the CPU kernels (src/ops/cpu/cpu_ops.c), which
# are built once per level of CPU_ISAS (-march=x86-64-<level>; the levels of DDM_CPU_ISAS in cpu_kernels.h),
# one chosen at start-up (the highest the CPU has, or $DDM_CPU_ISA); the GEMMs (OpenBLAS, the bf16 kernel) choose
# their CPU features at run time too. Measured as fast as -march=native here (docs/performance.md, "Portable
# build"), so the installed build is this one.
CFLAGS  ?= -O3 -fno-math-errno
CPU_ISAS := v2 v3 v4
CFLAGS  += -std=gnu11 -Wall -Wextra -fopenmp -pthread -fPIC -Iinclude -Isrc -I/usr/include/stb -MMD -MP $(CFLAGS_EXTRA)
LDLIBS  = -lopenblas -llapacke -lcjson -lstb -lpng -ljpeg -lz -lm -fopenmp -pthread

LIB_SRC  := $(shell find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/ops/cuda/*' -not -path src/ops/cpu/cpu_ops.c | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -maxdepth 1 -name 'test_*.c' | sort)

ISA_OBJ  := $(CPU_ISAS:%=$(BUILD)/src/ops/cpu/cpu_ops_%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(ISA_OBJ)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

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
LIB_OBJ  += $(BUILD)/src/ops/cuda/cuda_table.o $(CU_SRC:%.cu=$(BUILD)/%.o)
# static cudart (nvcc's default), the cuBLAS libraries found at run time through the rpath
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcudart_static -ldl -lrt -lpthread -lstdc++
GPU_TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/gpu/test_*.c)))
ifeq ($(MPI),1)
# MPI and CUDA together (`make cuda MPI=1`, into build-mpi/): the gradients are all-reduced by NCCL on the GPUs
CFLAGS   += -I$(CUDA_HOME)/include
LDLIBS   += -lnccl
endif
endif

# Objects depend on the build configuration, so that `make` after `make cuda` (or back) rebuilds them.
CONFIG_STAMP := $(BUILD)/.config
CONFIG_NOW   := CUDA=$(CUDA) CFLAGS=$(CFLAGS)
ifeq ($(filter cuda clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && (test "$$(cat $(CONFIG_STAMP) 2>/dev/null)" = '$(CONFIG_NOW)' || echo '$(CONFIG_NOW)' > $(CONFIG_STAMP)))
endif

all: $(BUILD)/ddm $(BUILD)/libddm.so $(GPU_TESTS)

cuda:
	$(MAKE) CUDA=1 all

$(BUILD)/libddm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libddm.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libddm.so.0 -o $@ $^ $(LDLIBS)

$(BUILD)/ddm: $(CLI_OBJ) $(BUILD)/libddm.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libddm.a $(LDLIBS)

$(BUILD)/%.o: %.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# A static pattern: as a plain pattern it would also offer make a way to build cpu_ops_v4.d (through %.d.o).
$(ISA_OBJ): $(BUILD)/src/ops/cpu/cpu_ops_%.o: src/ops/cpu/cpu_ops.c $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -march=x86-64-$* -DCPU_ISA=$* -c $< -o $@

$(BUILD)/%.o: %.cu $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libddm.a $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libddm.a $(LDLIBS)

# make install PREFIX=/opt/ddm [DESTDIR=/tmp/stage]: the tool, both libraries, the header, and ddm.pc with
# the prefix written in (generated at each install, so another PREFIX never reuses a stale file).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/ddm $(DESTDIR)$(PREFIX)/bin/ddm
	install -m 644 $(BUILD)/libddm.a $(DESTDIR)$(LIBDIR)/libddm.a
	install -m 755 $(BUILD)/libddm.so $(DESTDIR)$(LIBDIR)/libddm.so.$(VERSION)
	ln -sf libddm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libddm.so.0
	ln -sf libddm.so.0 $(DESTDIR)$(LIBDIR)/libddm.so
	install -m 644 include/ddm.h $(DESTDIR)$(PREFIX)/include/ddm.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' tools/ddm.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ddm $(DESTDIR)$(LIBDIR)/libddm.a $(DESTDIR)$(LIBDIR)/libddm.so* \
	      $(DESTDIR)$(PREFIX)/include/ddm.h $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc

# Reference values from the PyTorch twin (Debian's python3-torch), regenerated when the twin changes.
$(BUILD)/ref/.stamp: tools/twin.py tools/twin_model.py tools/st.py
	@mkdir -p $(BUILD)/ref
	$(PYTHON) tools/twin.py --out $(BUILD)/ref
	touch $@

# Random Inception-v3 weights and their PyTorch features (torchvision's blocks and pytorch-fid's) for
# test_inception and the eval tests. Without torchvision the script writes SKIP instead (no stamp, so
# the next make tries again).
$(BUILD)/ref/inception/.stamp: tools/inception_convert.py tools/st.py
	@mkdir -p $(BUILD)/ref/inception
	$(PYTHON) tools/inception_convert.py --random 0 --flavour both --out $(BUILD)/ref/inception
	@if [ ! -f $(BUILD)/ref/inception/SKIP ]; then touch $@; fi

# The fuzz harnesses (tests/fuzz/fuzz_*.c), built here with gcc and replay.c instead of libFuzzer: the
# regression inputs of tests/fuzz/regress/ run through them in `make test` (tests/cli/test_fuzz_regress.sh).
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/tests/fuzz/replay_%)
$(BUILD)/tests/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(BUILD)/libddm.a $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay.c $(BUILD)/libddm.a $(LDLIBS)

tests: $(TESTS) $(FUZZ_REPLAY) $(BUILD)/ddm $(BUILD)/ref/.stamp $(BUILD)/ref/inception/.stamp

test: tests
	bash tools/run_tests.sh

# Data-parallel training under mpirun (an MPI build in build-mpi/): 2 ranks against 1 process.
test-mpi:
	$(MAKE) MPI=1 build-mpi/ddm
	bash tests/mpi/test_mpi.sh build-mpi/ddm

# `make fuzz`: the libFuzzer harnesses (clang, with ASan + UBSan) in build-fuzz/fuzz/; tests/fuzz/run.sh runs them.
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	CFLAGS="$(FUZZ_CFLAGS)" $(MAKE) CC=clang BUILD=build-fuzz fuzz-harnesses
fuzz-harnesses: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libddm.a $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(BUILD)/libddm.a $(LDLIBS)

# Speed figures (see docs/performance.md); not part of the tests.
bench: $(BUILD)/ddm
	./$(BUILD)/ddm bench --model all

clean:
	rm -rf build build-mpi build-fuzz build-asan

.PHONY: all cuda install uninstall test tests test-mpi bench clean fuzz fuzz-harnesses
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(GPU_TESTS:=.d)
