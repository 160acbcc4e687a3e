# ddm build. `make` builds build/ddm, build/libddm.a and build/libddm.so; `make test` builds and runs
# every test (C unit tests, PyTorch-twin parity, CLI tests).
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
VERSION := 0.1.0
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
CFLAGS  ?= -O3 -fno-math-errno
CFLAGS  += -std=gnu11 -Wall -Wextra -fopenmp -pthread -fPIC -Iinclude -Isrc -I/usr/include/stb -MMD -MP
LDLIBS  = -lopenblas -llapacke -lcjson -lstb -lpng -ljpeg -lz -lm -fopenmp -pthread

LIB_SRC  := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=build/%.o)
TESTS    := $(TEST_SRC:tests/%.c=build/tests/%)

all: build/ddm build/libddm.so

build/libddm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

build/libddm.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libddm.so.0 -o $@ $^ $(LDLIBS)

# make install PREFIX=/opt/ddm [DESTDIR=/tmp/stage]: the tool, both libraries, the header, and ddm.pc with
# the prefix written in (generated at each install, so another PREFIX never reuses a stale file).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 build/ddm $(DESTDIR)$(PREFIX)/bin/ddm
	install -m 644 build/libddm.a $(DESTDIR)$(LIBDIR)/libddm.a
	install -m 755 build/libddm.so $(DESTDIR)$(LIBDIR)/libddm.so.$(VERSION)
	ln -sf libddm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libddm.so.0
	ln -sf libddm.so.0 $(DESTDIR)$(LIBDIR)/libddm.so
	install -m 644 include/ddm.h $(DESTDIR)$(PREFIX)/include/ddm.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LDLIBS)|' tools/ddm.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ddm $(DESTDIR)$(LIBDIR)/libddm.a $(DESTDIR)$(LIBDIR)/libddm.so* \
	      $(DESTDIR)$(PREFIX)/include/ddm.h $(DESTDIR)$(LIBDIR)/pkgconfig/ddm.pc

build/ddm: $(CLI_OBJ) build/libddm.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) build/libddm.a $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/tests/%: tests/%.c tests/test.h build/libddm.a
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

.PHONY: all test tests bench clean install uninstall
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
