# pdserve — disaggregated prefill/decode LLM serving on the CPU.
#
# Layout → binaries (no edits needed when a file is added):
#   common/util/*.c     → $(BUILD)/libpdutil.a       errors, logging, files, maps, mailboxes
#   common/engine/*.c   → $(BUILD)/libpdengine.a     model loading, forward pass, KV cache, sampling
#   common/tok/*.c      → $(BUILD)/libpdtok.a        tokenizers
#   common/grammar/*.c  → $(BUILD)/libpdgrammar.a    structured output: JSON Schema matcher, token masks
#   common/tmpl/*.c     → $(BUILD)/libpdtmpl.a       Jinja templates, chat rendering
#   proto/*.c           → $(BUILD)/libpdproto.a      wire protocol, UCX transport, KV transfer
#   worker/*.c          → $(BUILD)/libpdworker.a     the runtime both worker daemons run on
#   prefill_server/*.c  → $(BUILD)/pdserve-prefill    (all but main.c also → libpdprefill_server.a,
#   decode_server/*.c   → $(BUILD)/pdserve-decode      libpddecode_server.a: tests drive the roles;
#                                                    both daemons link both roles, to switch)
#   frontend/*.c        → $(BUILD)/pdserve-frontend  (+ llhttp from Debian's node-llhttp)
#   tools/NAME.c        → $(BUILD)/pdserve-NAME      single-file tools
#   tools/NAME/*.c      → $(BUILD)/pdserve-NAME      multi-file tools
#   tests/unit/NAME.c   → $(BUILD)/tests/NAME        unit tests (listed in tests/TESTS)
#   tests/drivers/NAME.c → $(BUILD)/tests/NAME       programs tests drive (peers, probes, drivers)
#   tests/helpers/*.c   → $(BUILD)/libpdtesthelp.a   code tests share (tests/unit/failalloc_*.c are
#                                                    linked with the allocation wrappers)
#
# Each library depends only on those after it in LIBS, so the link needs no --start-group: a call
# that runs back up the list fails to link.
#   tests/fuzz/NAME.c   → $(BUILD)/fuzz/NAME         libFuzzer harnesses (clang; docs/fuzzing.md)

BUILD   ?= build
CC      ?= gcc
# No -march: the binaries run on any x86-64. The engine's kernels pick AVX-512, AVX2+F16C or portable
# C at run time (common/engine/kernels.h), so the hot loops lose nothing; OPT="-O2 -march=native"
# still works and gives the same results.
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
XCFLAGS := -std=c11 -D_GNU_SOURCE -fopenmp-simd -Wall -Wextra -Wshadow -Wvla -pthread \
           -I. -I/usr/share/include/llhttp \
           $(shell pkg-config --cflags libuv jansson libpcre2-8 ucx openblas libsystemd 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs libuv jansson libpcre2-8 ucx openblas libsystemd 2>/dev/null) \
           -lucp -lucs -lm -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LAYERS      := worker proto common/tmpl common/tok common/engine common/grammar common/util
lib_of       = $(BUILD)/libpd$(notdir $(1)).a
LIB_SRC     := $(foreach l,$(LAYERS),$(wildcard $(l)/*.c))
LLHTTP_SRC  := $(wildcard /usr/share/llhttp/*.c)
TOOL_FILES  := $(patsubst tools/%.c,%,$(wildcard tools/*.c))
TOOL_DIRS   := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
UNIT_TESTS  := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*.c)) \
               $(patsubst tests/drivers/%.c,%,$(wildcard tests/drivers/*.c))
DAEMONS     := $(if $(wildcard prefill_server/*.c),pdserve-prefill) \
               $(if $(wildcard decode_server/*.c),pdserve-decode) \
               $(if $(wildcard frontend/*.c),pdserve-frontend)

LIBS    := $(foreach l,$(LAYERS),$(call lib_of,$(l))) $(BUILD)/libllhttp.a
BINS    := $(addprefix $(BUILD)/,$(DAEMONS)) \
           $(addprefix $(BUILD)/pdserve-,$(TOOL_FILES) $(TOOL_DIRS))
TESTBIN := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.PHONY: all deps test test-deploy asan fuzz soak bench bench-engine bench-transport bench-pipeline bench-goodput bench-prefix bench-plan bench-grammar bench-ingest run clean install
all: $(BINS) $(TESTBIN)

deps:
	@./tools/deps.sh
	@./tests/node/setup.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XCFLAGS) -MMD -MP -c $< -o $@

# llhttp's generated C is not ours to lint.
$(BUILD)/obj/llhttp/%.o: /usr/share/llhttp/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(filter-out -W%,$(XCFLAGS)) -w -c $< -o $@

# LIB_RULE(folder[, sources]): the folder's archive, of all its sources unless told which.
define LIB_RULE
$(call lib_of,$(1)): $(call obj,$(or $(2),$(wildcard $(1)/*.c)))
	@rm -f $$@; ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call LIB_RULE,$(l))))
$(BUILD)/libllhttp.a: $(patsubst /usr/share/llhttp/%.c,$(BUILD)/obj/llhttp/%.o,$(LLHTTP_SRC))
	@rm -f $@; ar rcs $@ $^

ROLES     := prefill_server decode_server
ROLE_LIBS := $(foreach r,$(ROLES),$(call lib_of,$(r)))
$(foreach r,$(ROLES),$(eval $(call LIB_RULE,$(r),$(filter-out $(r)/main.c,$(wildcard $(r)/*.c)))))

# Each daemon carries both roles: the frontend's rebalancer may switch it to the other one.
$(BUILD)/pdserve-prefill: $(call obj,prefill_server/main.c) $(ROLE_LIBS) $(LIBS)
	$(CC) $(CFLAGS) $(XCFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@
$(BUILD)/pdserve-decode: $(call obj,decode_server/main.c) $(ROLE_LIBS) $(LIBS)
	$(CC) $(CFLAGS) $(XCFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@
$(BUILD)/pdserve-frontend: $(call obj,$(wildcard frontend/*.c)) $(LIBS)
	$(CC) $(CFLAGS) $(XCFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@

define TOOL_FILE_RULE
$(BUILD)/pdserve-$(1): $(BUILD)/obj/tools/$(1).o $(LIBS)
	$$(CC) $$(CFLAGS) $$(XCFLAGS) $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDLIBS) -o $$@
endef
$(foreach t,$(TOOL_FILES),$(eval $(call TOOL_FILE_RULE,$(t))))
define TOOL_DIR_RULE
$(BUILD)/pdserve-$(1): $(call obj,$(wildcard tools/$(1)/*.c)) $(LIBS)
	$$(CC) $$(CFLAGS) $$(XCFLAGS) $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDLIBS) -o $$@
endef
$(foreach t,$(TOOL_DIRS),$(eval $(call TOOL_DIR_RULE,$(t))))
# The planner's simulator routes and rebalances by the frontend's own rules and cost estimates.
$(BUILD)/pdserve-plan: $(call obj,frontend/route_slo.c frontend/rebalance_policy.c)

TESTHELP := $(BUILD)/libpdtesthelp.a
$(TESTHELP): $(call obj,$(wildcard tests/helpers/*.c))
	@rm -f $@; ar rcs $@ $^
FAILALLOC_LD := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup

$(BUILD)/tests/failalloc_%: $(BUILD)/obj/tests/unit/failalloc_%.o $(TESTHELP) $(ROLE_LIBS) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XCFLAGS) $(FAILALLOC_LD) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTHELP) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XCFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@
$(BUILD)/tests/%: $(BUILD)/obj/tests/drivers/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XCFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) -o $@

# Everything a test needs, then every test in tests/TESTS; the runner ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ./tests/run $(T)

# The systemd units booted for real (tests/TESTS.deploy, docs/deploy.md): Debian roots made by
# debootstrap (cached in $(BUILD)/deploy-root/), `make install` into them, systemd-nspawn boots them.
# Needs root; a step of its own in .ci/run. Ends with "N passed, N failed".
test-deploy: deps
	@./tools/deps.sh deploy
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) TESTS_FILE=tests/TESTS.deploy ./tests/run $(T)

# The same tests, built and run under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1" CFLAGS="-O1 -g $(SAN)" all
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./tests/run $(T)

# Fuzzing (docs/fuzzing.md): every library object is built a second time with clang and coverage
# instrumentation into $(BUILD)/fuzz/, so each harness in tests/fuzz/ links against the same archives.
FUZZ_CC      ?= clang
# PD_FUZZ_BUILD: the engine's AVX2/AVX-512 kernels are left out (the portable ones serve): no harness
# runs them, and instrumented for coverage they took minutes of a fuzz test's time limit to compile.
FUZZ_CFLAGS  ?= -g -O1 -fno-omit-frame-pointer -Wno-pass-failed -fsanitize=address,undefined -fno-sanitize-recover=undefined -DPD_FUZZ_BUILD
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_SRC     := $(LIB_SRC) $(filter-out frontend/main.c,$(wildcard frontend/*.c))
FUZZ_LIBS    := $(BUILD)/fuzz/libpdfuzz.a $(BUILD)/fuzz/libllhttp.a
fuzzobj       = $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(1))

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(XCFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/obj/llhttp/%.o: /usr/share/llhttp/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(filter-out -W%,$(XCFLAGS)) -w -c $< -o $@
$(BUILD)/fuzz/libpdfuzz.a: $(call fuzzobj,$(FUZZ_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/fuzz/libllhttp.a: $(patsubst /usr/share/llhttp/%.c,$(BUILD)/fuzz/obj/llhttp/%.o,$(LLHTTP_SRC))
	@rm -f $@; ar rcs $@ $^
.PRECIOUS: $(BUILD)/fuzz/obj/%.o
$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(FUZZ_LIBS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIBS) $(LDLIBS) -o $@

# make fuzz [FUZZ=name] [FUZZ_SECONDS=60]: deps (clang, the tokenizer files), then each harness for
# FUZZ_SECONDS, keeping its corpus in $(BUILD)/fuzz/corpus/NAME; a summary line per harness, and the
# input of any crash.
fuzz: deps
	@$(MAKE) -s --no-print-directory $(addprefix $(BUILD)/fuzz/,$(or $(FUZZ),$(FUZZ_NAMES)))
	@BUILD=$(BUILD) ./tests/fuzz/run-all.sh $(FUZZ_SECONDS) $(or $(FUZZ),$(FUZZ_NAMES))

# make soak [SOAK_MINUTES=5 | SOAK_ROUNDS=N]: minutes of mixed valid, invalid and hostile requests on a
# cluster whose workers restart; fails on a wrong answer, a 5xx, a hang, a crash, or memory, fd or
# thread growth (docs/soak.md). Not in tests/TESTS. BUILD=build-asan builds and runs it under ASan.
soak: deps
	@$(MAKE) --no-print-directory $(if $(filter build-asan,$(BUILD)),OPT="-O1" CFLAGS="-O1 -g $(SAN)") all
	@BUILD=$(BUILD) ./tests/soak/soak.sh

# Benchmarks print ratios against a baseline measured in the same invocation; tests never time things.
bench: bench-engine bench-transport bench-pipeline bench-goodput bench-prefix bench-plan bench-grammar bench-ingest

bench-engine: deps all
	@BUILD=$(BUILD) ./tests/bench/engine.sh
bench-transport: deps all
	@BUILD=$(BUILD) ./tests/bench/transport.sh
bench-pipeline: deps all
	@BUILD=$(BUILD) ./tests/bench/pipeline.sh
bench-prefix: deps all
	@BUILD=$(BUILD) ./tests/bench/prefix.sh
bench-goodput: deps all
	@BUILD=$(BUILD) ./tests/bench/goodput.sh
bench-plan: deps all
	@BUILD=$(BUILD) ./tests/bench/plan.sh
bench-grammar: deps all
	@BUILD=$(BUILD) ./tests/bench/grammar.sh
bench-ingest: deps all
	@BUILD=$(BUILD) ./tests/bench/ingest.sh

run: deps $(BINS)
	@BUILD=$(BUILD) ./tools/run-local.sh

# make install [PREFIX=/usr/local] [DESTDIR=staging root]: binaries, systemd units (paths rewritten to
# PREFIX), the sysusers.d entry for the pdserve user, docs and example /etc/pdserve files (docs/deploy.md).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR      ?= $(PREFIX)/share/doc/pdserve
UNIT_SUBST  := -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	for u in deploy/*.service deploy/*.target; do \
	  sed $(UNIT_SUBST) $$u >$(DESTDIR)$(UNITDIR)/$${u#deploy/} && chmod 644 $(DESTDIR)$(UNITDIR)/$${u#deploy/} || exit 1; done
	install -m 644 deploy/pdserve.sysusers $(DESTDIR)$(SYSUSERSDIR)/pdserve.conf
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	cp -R deploy/examples $(DESTDIR)$(DOCDIR)/

clean:
	rm -rf build build-asan

# Dependency files of sources that still exist: one left by a file since moved would name a rule
# for an object nothing can build.
-include $(foreach d,$(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null),\
           $(if $(wildcard $(patsubst $(BUILD)/fuzz/obj/%.d,%.c,$(patsubst $(BUILD)/obj/%.d,%.c,$(d)))),$(d)))
