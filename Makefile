# ddm build. `make` builds build/libddm.a and build/ddm; `make test` builds and runs the tests.
CC      ?= gcc
CFLAGS  ?= -O3 -march=native -fno-math-errno
CFLAGS  += -std=gnu11 -Wall -Wextra -fopenmp -Iinclude -Isrc -I/usr/include/stb -MMD -MP
LDLIBS  = -lopenblas -llapacke -lcjson -lstb -lz -lm -fopenmp

LIB_SRC  := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=build/%.o)
TESTS    := $(TEST_SRC:tests/%.c=build/tests/%)

all: build/ddm

build/libddm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

build/ddm: $(CLI_OBJ) build/libddm.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) build/libddm.a $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/tests/%: tests/%.c tests/test.h build/libddm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< build/libddm.a $(LDLIBS)

tests: $(TESTS) build/ddm

# Runs every C test binary; tools/run_tests.sh prints the closing "N passed, N failed" line.
test: tests
	bash tools/run_tests.sh

clean:
	rm -rf build

.PHONY: all test tests clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
