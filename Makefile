# Ember build. `make` builds build/ember; `make test` runs everything;
# `make run` installs dependencies, builds and boots the guest-kit demo.
CC      ?= gcc
BUILD   := build
PKGS    := json-c libseccomp liburing zlib
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -D_GNU_SOURCE -Isrc -I$(BUILD)/gen -g \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# The libraries are linked statically: resolving shared objects at exec
# costs about a millisecond of start-up time. ISA-L (CRC-32 for the state
# stream) ships no static library.
LDLIBS  := -Wl,-Bstatic $(shell pkg-config --libs $(PKGS) 2>/dev/null) -Wl,-Bdynamic -lisal -lpthread
CFLAGS  ?= -O2
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS     := $(SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_OBJS:= $(SRCS:%.c=$(BUILD)/asan/%.o)
UNIT_SRCS:= $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
# The same tests without sanitizers, for valgrind (tests/integration/test_valgrind.sh).
PLAIN_UNIT_BINS:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit-plain/%)
FUZZ_SRCS:= $(wildcard tests/fuzz/fuzz_*.c)
# libFuzzer targets: clang, the library rebuilt with fuzzer coverage.
# FUZZ_DIR and FUZZ_SAN make other flavours of the same targets: the
# campaign's coverage build, a build without sanitizers for valgrind.
FUZZ_CC  ?= clang
FUZZ_DIR ?= $(BUILD)/fuzz
FUZZ_SAN ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJS:= $(SRCS:%.c=$(FUZZ_DIR)/%.o)
FUZZ_BINS:= $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_TIME?= 60

.PHONY: all test check unit guest run deps clean bench fuzz fuzzers fuzz-campaign
all: $(BUILD)/ember $(BUILD)/asan/ember guest

# System call names by number, for the seccomp report (src/sandbox/seccomp.c).
$(BUILD)/gen/syscall_names.h:
	@mkdir -p $(dir $@)
	printf '#include <asm/unistd_64.h>\n' | $(CC) -dM -E - | \
		sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9]*\)$$/\t[\2] = "\1",/p' >$@.tmp
	mv $@.tmp $@
$(BUILD)/obj/src/sandbox/seccomp.o $(BUILD)/asan/src/sandbox/seccomp.o \
	$(FUZZ_DIR)/src/sandbox/seccomp.o: $(BUILD)/gen/syscall_names.h

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/libember.a: $(OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/asan/libember.a: $(ASAN_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/ember: $(BUILD)/obj/src/main.o $(BUILD)/libember.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/ember: $(BUILD)/asan/src/main.o $(BUILD)/asan/libember.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

# Unit tests run with ASan+UBSan; they need no /dev/kvm.
$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/asan/libember.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -o $@ $< $(BUILD)/asan/libember.a -lcmocka $(LDLIBS) $(UNIT_LDFLAGS)

$(BUILD)/unit-plain/%: tests/unit/%.c $(BUILD)/libember.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 -o $@ $< $(BUILD)/libember.a -lcmocka $(LDLIBS) $(UNIT_LDFLAGS)

# test_vcpu_cpuid answers the library's KVM_GET_CPUID2 itself.
$(BUILD)/unit/test_vcpu_cpuid $(BUILD)/unit-plain/test_vcpu_cpuid: UNIT_LDFLAGS := -Wl,--wrap=ioctl

unit: $(UNIT_BINS) $(PLAIN_UNIT_BINS)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_COMMON) -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libember.a: $(FUZZ_OBJS)
	@rm -f $@; ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libember.a
	$(FUZZ_CC) $(CFLAGS_COMMON) -O1 $(FUZZ_SAN) -fsanitize=fuzzer -MMD -MP -o $@ $< $(FUZZ_DIR)/libember.a $(LDLIBS) \
		$(FUZZ_LDFLAGS)

# fuzz_stream runs the real loaders against a fake KVM of its own: every
# ioctl (and close, to know its fds) of the library goes through it; guest
# RAM comes from a mapping it keeps across inputs; the PIT's thread runs
# inline.
$(FUZZ_DIR)/fuzz_stream: FUZZ_LDFLAGS := -Wl,--wrap=ioctl,--wrap=close,--wrap=mem_create,--wrap=mem_destroy \
	-Wl,--wrap=pthread_create,--wrap=pthread_join

fuzzers: $(FUZZ_BINS)

# Each target for FUZZ_TIME seconds from its seed corpus
# (tests/fuzz/corpus/NAME/); new inputs land in build/fuzz/corpus/NAME/.
fuzz: fuzzers
	bash tests/fuzz/run.sh --time $(FUZZ_TIME)

# A campaign: every target for its share of HOURS hours, corpus and
# findings under build/fuzz-campaign/, then coverage from the build in
# build/fuzz-cov (clang's source-based coverage, llvm-cov).
HOURS ?= 1
fuzz-campaign: fuzzers
	$(MAKE) fuzzers FUZZ_DIR=$(BUILD)/fuzz-cov FUZZ_SAN="-fprofile-instr-generate -fcoverage-mapping"
	bash tests/fuzz/campaign.sh $(HOURS)

# The guest kit (tests/guest): each kernel as NAME.elf (booted through the
# Ember note) and, for the test suite, NAME.flat (multiboot, ELF32, like
# kvm-unit-tests' x86 .flat files).
guest:
	$(MAKE) -C tests/guest O=$(abspath $(BUILD)/guest)

deps:
	bash tools/install-deps.sh

# `test` and `run` install dependencies first, then re-enter make so that
# pkg-config sees the freshly installed libraries.
test: deps
	$(MAKE) check

check: all unit fuzzers
	bash tests/run.sh

run: deps
	$(MAKE) all
	bash tools/demo.sh

bench: all
	bash bench/run.sh


clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
