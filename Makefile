# esproxy build. `make` builds build/esproxy; `make test` runs every test;
# `make test-unit` is the fast inner loop. See README.md.

CC        ?= cc
CLANG     ?= clang
BUILD     := build
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
             -Wmissing-prototypes -Wno-format-nonliteral
HARDEN    := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT       ?= -O2 -g
CSTD      := -std=c11 -D_GNU_SOURCE
LWIP_SRC  := $(BUILD)/src/lwip
INCS      := -I. -Iipsec/lwip -I$(LWIP_SRC)/src/include -I/usr/share/include/llhttp
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) $(HARDEN) $(INCS) -DESPROXY_VERSION='"$(VERSION)"' $(EXTRA_CFLAGS)
LDFLAGS_ALL = -pie -Wl,-z,relro,-z,now $(EXTRA_LDFLAGS)
LIBS      := -lmbedtls -lmbedx509 -lmbedcrypto -luv -linih -lm

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Our sources: everything under the four code folders except the main file.
CORE_SRCS := $(sort $(wildcard config/*.c ipsec/*.c protocols/*.c proxy/*.c))
CORE_SRCS := $(filter-out proxy/main.c,$(CORE_SRCS))
MAIN_SRC  := proxy/main.c
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRCS:= $(sort $(wildcard tests/bench/bench_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
TESTLIB_SRCS := $(sort $(wildcard tests/unit/support/*.c))

# lwIP core, built from Debian's source package with ipsec/lwip/lwipopts.h.
LWIP_FILES := core/init core/def core/inet_chksum core/ip core/mem core/memp \
              core/netif core/pbuf core/stats core/sys core/tcp core/tcp_in \
              core/tcp_out core/timeouts core/ipv4/icmp core/ipv4/ip4 \
              core/ipv4/ip4_addr core/ipv4/ip4_frag
LLHTTP_FILES := api http llhttp

# $(call objs,VARIANT,SRCS)
objs = $(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$(2))
lwip_objs = $(patsubst %,$(BUILD)/$(1)/lwip/%.o,$(LWIP_FILES))
llhttp_objs = $(patsubst %,$(BUILD)/$(1)/llhttp/%.o,$(LLHTTP_FILES))

.PHONY: docs all deps deps-build test test-unit test-asan test-cli check-lwip fuzz fuzz-long bench demo clean distclean help
.SUFFIXES:
.DELETE_ON_ERROR:

all: $(BUILD)/esproxy

help:
	@echo "make deps       install Debian packages and fetch lwIP source"
	@echo "make deps-build only the packages the build needs (Docker build stage)"
	@echo "make demo       a demo cluster in network namespaces (DEMO_EXIT=1: exit after the sessions)"
	@echo "make            build build/esproxy"
	@echo "make test-unit  fast unit tests (seconds)"
	@echo "make test       everything: unit, sanitizers, CLI, fuzz smoke, labs"
	@echo "make fuzz-long  every fuzz harness for FUZZ_SECONDS each (default 300); FUZZ_MERGE=1 merges new coverage into tests/fuzz/corpus/"
	@echo "make bench      benchmarks (ratios against same-run references)"

# ESPROXY_DEPS="build unit demo fuzz test" (default all) picks package sets
deps:
	sh mk/deps.sh

# only the packages `make` needs (the Docker image's build stage)
deps-build:
	ESPROXY_DEPS=build sh mk/deps.sh

$(LWIP_SRC)/src/core/tcp.c:
	sh mk/fetch-lwip.sh $(BUILD)/src

# ---- per-variant rules: rel (release flags) and asan (sanitizers) ----
define variant
$(BUILD)/$(1)/obj/%.o: %.c | $(LWIP_SRC)/src/core/tcp.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_ALL) $(2) -MMD -MP -c $$< -o $$@

$(BUILD)/$(1)/lwip/%.o: $(LWIP_SRC)/src/%.c ipsec/lwip/lwipopts.h ipsec/lwip/arch/cc.h ipsec/lwip/lwip_hooks.h
	@mkdir -p $$(@D)
	$$(CC) $(CSTD) $(OPT) $(2) -fPIE -w -Iipsec/lwip -I$(LWIP_SRC)/src/include -c $$< -o $$@

$(BUILD)/$(1)/llhttp/%.o: /usr/share/llhttp/%.c
	@mkdir -p $$(@D)
	$$(CC) $(CSTD) $(OPT) $(2) -fPIE -w -I/usr/share/include/llhttp -c $$< -o $$@

$(BUILD)/$(1)/lwip/build_info.o: ipsec/lwip/lwip_build_info.c ipsec/lwip/lwipopts.h ipsec/lwip/arch/cc.h | $(LWIP_SRC)/src/core/tcp.c
	@mkdir -p $$(@D)
	$$(CC) $(CSTD) $(OPT) $(2) -fPIE -Iipsec/lwip -I$(LWIP_SRC)/src/include -c $$< -o $$@

$(BUILD)/$(1)/libesproxy.a: $(call objs,$(1),$(CORE_SRCS)) $(call lwip_objs,$(1)) $(BUILD)/$(1)/lwip/build_info.o $(call llhttp_objs,$(1))
	@rm -f $$@
	ar rcs $$@ $$^
endef

$(eval $(call variant,rel,))
$(eval $(call variant,asan,$(SAN_FLAGS)))

$(BUILD)/esproxy: $(call objs,rel,$(MAIN_SRC)) $(BUILD)/rel/libesproxy.a
	$(CC) $(LDFLAGS_ALL) $^ $(LIBS) -o $@

$(BUILD)/asan/esproxy: $(call objs,asan,$(MAIN_SRC)) $(BUILD)/asan/libesproxy.a
	$(CC) $(LDFLAGS_ALL) $(SAN_FLAGS) $^ $(LIBS) -o $@

# ---- unit tests: one binary per tests/unit/test_*.c ----
$(BUILD)/rel/tests/%: $(call objs,rel,tests/unit/%.c) $(call objs,rel,$(TESTLIB_SRCS)) $(BUILD)/rel/libesproxy.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) $^ $(LIBS) -lcmocka -o $@

$(BUILD)/asan/tests/%: $(call objs,asan,tests/unit/%.c) $(call objs,asan,$(TESTLIB_SRCS)) $(BUILD)/asan/libesproxy.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) $(SAN_FLAGS) $^ $(LIBS) -lcmocka -o $@

UNIT_REL  := $(patsubst tests/unit/%.c,$(BUILD)/rel/tests/%,$(TEST_SRCS))
UNIT_ASAN := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(TEST_SRCS))

# ---- benchmarks and fuzzers ----
$(BUILD)/rel/bench/%: $(call objs,rel,tests/bench/%.c) $(BUILD)/rel/libesproxy.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) $^ $(LIBS) -o $@

FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -g -O1
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRCS) $(LWIP_SRC)/src/core/tcp.c
	@mkdir -p $(@D)
	$(CLANG) $(CSTD) $(FUZZ_FLAGS) $(INCS) -DESPROXY_VERSION='"fuzz"' -w \
	  $< $(CORE_SRCS) $(patsubst %,$(LWIP_SRC)/src/%.c,$(LWIP_FILES)) ipsec/lwip/lwip_build_info.c \
	  $(patsubst %,/usr/share/llhttp/%.c,$(LLHTTP_FILES)) $(LIBS) -o $@

# ---- test tools (programs the script tests drive) ----
$(BUILD)/rel/tools/%: $(call objs,rel,tests/tools/%.c) $(BUILD)/rel/libesproxy.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) $^ $(LIBS) -o $@

# ASan+UBSan builds of the same tools, for script tests that want them.
$(BUILD)/asan/tools/%: $(call objs,asan,tests/tools/%.c) $(BUILD)/asan/libesproxy.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) $(SAN_FLAGS) $^ $(LIBS) -o $@

TOOL_SRCS  := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/rel/tools/%,$(TOOL_SRCS))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/rel/bench/%,$(BENCH_SRCS))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

# ---- test entry points ----
test-unit: $(UNIT_REL) $(BUILD)/esproxy
	sh tests/run-unit.sh $(UNIT_REL)

test-asan: $(UNIT_ASAN) $(BUILD)/asan/esproxy
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  sh tests/run-unit.sh $(UNIT_ASAN)

test-cli: $(BUILD)/esproxy $(BUILD)/asan/esproxy $(TOOL_BINS)
	sh tests/run-scripts.sh tests/cli

fuzz: $(FUZZ_BINS)
	sh tests/run-fuzz.sh $(FUZZ_BINS)

# minutes per harness, from the repository's seeds and the corpus earlier
# runs grew in build/fuzz/work/ (FUZZ_MERGE=1: merge it into the seeds)
fuzz-long: $(FUZZ_BINS)
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} sh tests/run-fuzz.sh $(FUZZ_BINS)

bench: $(BENCH_BINS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done

# the build inside `make test` uses every core (CI runs plain `make test`)
JOBS := $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) -j$(JOBS) all $(UNIT_REL) $(UNIT_ASAN) $(BUILD)/asan/esproxy $(TOOL_BINS) $(FUZZ_BINS) $(BENCH_BINS)
	sh tests/run-all.sh

docs: $(BUILD)/rel/tools/config_reference
	sh mk/update-readme-reference.sh $<

# `make deps` first, then a new make for the build: this make does not see
# the files make deps has just installed (GNU make caches directories), and
# on a fresh machine it stopped at "No rule to make target
# 'build/rel/llhttp/api.o'" (node-llhttp's /usr/share/llhttp/*.c)
demo: deps
	@$(MAKE) --no-print-directory all
	sh mk/demo.sh

.PHONY: drill
drill: all
	sh mk/drill.sh $(BUILD)/drill

clean:
	rm -rf $(BUILD)/rel $(BUILD)/asan $(BUILD)/fuzz $(BUILD)/esproxy $(BUILD)/test-output

distclean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/rel/obj $(BUILD)/asan/obj -name '*.d' 2>/dev/null)

# The version is a -D flag, which make does not track: the files that print
# it depend on a stamp rewritten only when `git describe` changes.
VERSION_STAMP := $(BUILD)/version.stamp
ifeq ($(filter clean distclean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && (echo '$(VERSION)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION)' >$(VERSION_STAMP)))
endif
$(foreach v,rel asan,$(call objs,$(v),proxy/main.c proxy/runtime.c proxy/status.c proxy/metrics.c)): $(VERSION_STAMP)
