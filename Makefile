# bpfd — build, test and demo. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := build

GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(BIN)/tools
K8S       := $(BIN)/k8s
BINARIES  := bpfctl-image bpfd bpfctl bpfd-agent bpfd-operator
PKGS      ?= ./...
# The version and commit every binary reports (--version) and bpfctl-image
# records in the artifacts it builds: git describe of a v* tag, else
# v0.0.0-<commit count>-g<short commit>; -dirty when the tree has changes.
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo "v0.0.0-$$(git rev-list --count HEAD 2>/dev/null || echo 0)-g$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD 2>/dev/null || echo -dirty)")
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
# Build tags that leave out what no binary uses and every start would pay
# for: urfave/cli's man page and markdown generation (blackfriday's tables
# built at init) and gRPC's golang.org/x/net/trace (html/template).
GOTAGS    := urfave_cli_no_docs grpcnotrace
LDFLAGS   := -X github.com/bpfd-dev/bpfd/internal/version.version=$(VERSION) -X github.com/bpfd-dev/bpfd/internal/version.commit=$(COMMIT)
# -count=1: a cached result of a kernel, registry or cluster test proves nothing.
TESTFLAGS ?= -count=1 -timeout 30m

# Fuzz targets, as package:Target, run one after the other by `make fuzz`, each
# for FUZZTIME (a go test -fuzztime value: 60s, 5m, 100000x). Seeds come from
# testdata/bad; what a target finds is written to its package's testdata/fuzz.
FUZZTIME    ?= 60s
FUZZFLAGS   ?=
FUZZ_TARGETS := ./pkg/artifact:FuzzDescribe ./pkg/artifact:FuzzReadArtifact ./pkg/artifact:FuzzParseReference \
	./pkg/verify:FuzzParsePolicy ./pkg/verify:FuzzVerifySignatures ./internal/daemon:FuzzParseConfig \
	./internal/csi:FuzzParsePublish \
	./pkg/runtime/inventory:FuzzParsePodCgroup ./pkg/runtime/mapview:FuzzJSON

# The soak (make soak): bpfd's concurrency and crash tests at full length (8
# clients x 500 calls, 200 SIGKILLs; BPFD_SOAK=1), then the daemon's registry and
# disk fault tests. `make test` runs the same tests short (8 x 50 calls, 20 kills).
SOAK_TESTS  := ^(TestConcurrentClients|TestCrashDuringLoads)$$
FAULT_TESTS := ^(TestRegistryKilledMidPull|TestSlowRegistry|TestRegistryServesOtherContent|TestFullCacheDir|TestFullStateDir|TestUnwritableStateDir|TestUnwritableCache|TestReadOnlyStateDir)$$

# Packages whose tests also run in the kernel test VM (hack/vm) on Debian's stock
# kernel, where kprobes, fentry/fexit and freplace work. Add yours here.
VM_PKGS      ?= ./internal/testing/kerneltest ./pkg/runtime ./pkg/runtime/dispatcher ./internal/daemon ./cmd/bpfd ./cmd/bpfctl ./pkg/maps ./internal/csi
VM_TESTFLAGS ?=
# The kernel hack/vm/setup.sh fetches, as internal/testing/testutil's kernel profiles
# name it: inside the VM every feature that kernel has must be there.
VM_KERNEL    := debian-6.1

# Tests find the real components here; as root every privileged test must run.
export PATH := $(TOOLS):$(PATH)
export KUBEBUILDER_ASSETS := $(K8S)
ifeq ($(shell id -u),0)
export BPFD_REQUIRE_PRIVILEGED ?= 1
endif

CLANG     ?= clang
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I/usr/include/$(shell uname -m)-linux-gnu \
	-fdebug-prefix-map=$(CURDIR)=.
BPF_SRCS  := $(wildcard bytecode/*.bpf.c)
BPF_OBJS  := $(BPF_SRCS:.c=.o)
# The dispatchers are built into the package that embeds them.
DISPATCHER_SRCS := $(wildcard bytecode/dispatcher/*.bpf.c)
DISPATCHER_OBJS := $(patsubst bytecode/dispatcher/%.c,pkg/runtime/dispatcher/bpf/%.o,$(DISPATCHER_SRCS))
# The node inventory's iterators are built into the package that embeds them.
INVENTORY_SRCS := $(wildcard bytecode/inventory/*.bpf.c)
INVENTORY_OBJS := $(patsubst bytecode/inventory/%.c,pkg/runtime/inventory/bpf/%.o,$(INVENTORY_SRCS))
# Objects the tests load: pkg/artifact's malformed and unusual objects (one
# without programs, a big-endian build, one without BTF) and pkg/runtime's
# programs the verifier must reject, pkg/runtime/dispatcher's too.
ARTIFACT_TESTDATA := pkg/artifact/testdata
TEST_OBJS := $(ARTIFACT_TESTDATA)/no_programs.bpf.o $(ARTIFACT_TESTDATA)/xdp_counter_be.bpf.o \
	$(ARTIFACT_TESTDATA)/xdp_pass_nobtf.bpf.o $(ARTIFACT_TESTDATA)/layout/index.json \
	$(patsubst %.c,%.o,$(wildcard pkg/runtime/testdata/*.bpf.c pkg/runtime/dispatcher/testdata/*.bpf.c))

.PHONY: help build print-ldflags print-tags test test-vm soak fuzz tools bytecode lint generate check-generate bundle demo bench bench-vm clean

help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build the five binaries into bin/, stamped with VERSION and COMMIT.
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

print-ldflags: ## Print the -ldflags that stamp the version (the version tests build with them).
	@echo '$(LDFLAGS)'

print-tags: ## Print the build tags the binaries are built with.
	@echo '$(GOTAGS)'

tools: ## Install or build every external component the tests use (idempotent).
	hack/tools.sh

test: tools check-generate ## Check the generated files, run every test this machine can run and the demo, then the kernel tests in the VM.
	$(MAKE) --no-print-directory bundle
	@test -z "$$(git status --porcelain -- bundle bundle.Dockerfile)" || { git status --short -- bundle bundle.Dockerfile; echo "make bundle changed the committed bundle"; exit 1; }
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(MAKE) --no-print-directory demo
	$(MAKE) --no-print-directory test-vm

soak: tools ## Run the soak long: 8 clients x 500 calls and 200 bpfd crashes, then the registry and disk faults.
	BPFD_SOAK=1 $(GO) test -count=1 -timeout 60m -v -run '$(SOAK_TESTS)' ./cmd/bpfd
	BPFD_SOAK=1 $(GO) test -count=1 -timeout 10m -run '$(FAULT_TESTS)' ./internal/daemon

fuzz: ## Run each fuzz target for FUZZTIME (default 60s), one after the other.
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $${t%%:*}; \
	done

# One VM boot per package, run by `go test -exec`: with two cores, two packages
# boot and run side by side, which beats running them one after the other in a
# single boot. The test binaries are static (CGO_ENABLED=0) for the guest's bare
# busybox. The VM is killed at 20m30s: after a hung test's own 20m timeout has
# printed its goroutines, before go test gives up on the process at 21m. A
# package takes 1-3 minutes on a quiet machine; ten times that on a loaded one.
# Debian's xdp-loader runs in the guest too, with its libraries (BPFD_XDP_LOADER).
test-vm: ## Run VM_PKGS' tests in a VM with Debian's 6.1 kernel (VM_TESTFLAGS="-run X -v").
	hack/tools.sh vm libbpf_tools_vm
	hack/vm/xdp-loader.sh $(BIN)/xdp-tools
	CGO_ENABLED=0 BPFD_REQUIRE_PRIVILEGED=1 BPFD_REQUIRE_KERNEL=$(VM_KERNEL) VM_TIMEOUT=1230 \
		BPFD_XDP_LOADER=$(BIN)/xdp-tools/xdp-loader BPFD_LIBBPF_TOOLS=$(BIN)/libbpf-tools \
		$(GO) test -count=1 -timeout 20m -exec $(CURDIR)/hack/vm/vmrun.sh $(VM_TESTFLAGS) $(VM_PKGS)

bytecode: $(BPF_OBJS) $(DISPATCHER_OBJS) $(INVENTORY_OBJS) $(TEST_OBJS) ## Rebuild bytecode/*.bpf.o, the dispatchers, the inventory's iterators and the tests' objects with Debian's clang.

bytecode/%.bpf.o: bytecode/%.bpf.c bytecode/common.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

# The accounting variants include their dispatcher's source.
pkg/runtime/dispatcher/bpf/%.bpf.o: bytecode/dispatcher/%.bpf.c bytecode/dispatcher/dispatcher.h $(DISPATCHER_SRCS)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

pkg/runtime/inventory/bpf/%.bpf.o: bytecode/inventory/%.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

$(ARTIFACT_TESTDATA)/no_programs.bpf.o: $(ARTIFACT_TESTDATA)/no_programs.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

$(ARTIFACT_TESTDATA)/xdp_counter_be.bpf.o: bytecode/xdp_counter.bpf.c bytecode/common.h
	$(CLANG) $(BPF_CFLAGS) -target bpfeb -c $< -o $@
	llvm-strip -g $@

$(ARTIFACT_TESTDATA)/xdp_pass_nobtf.bpf.o: $(ARTIFACT_TESTDATA)/xdp_pass.bpf.c
	$(CLANG) $(filter-out -g,$(BPF_CFLAGS)) -c $< -o $@

# An OCI layout holding an index of xdp_counter for linux/amd64 and, arch-neutral, linux/bpfel.
$(ARTIFACT_TESTDATA)/layout/index.json: bytecode/xdp_counter.bpf.o
	rm -rf $(@D)
	$(GO) run ./cmd/bpfctl-image build --dest oci:$(@D):v1 --platform linux/amd64=$< --platform linux/bpfel=$<

pkg/%.bpf.o: pkg/%.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

# controller-gen writes YAML without a header; generate adds one.
GEN_HEADER := \# Code generated by controller-gen from pkg/k8s (make generate). DO NOT EDIT.

# What generate writes. The Go generators are pinned in go.mod's tool block;
# protoc is Debian 12's (protobuf-compiler), whose version the generated code
# names, so generate refuses another one rather than write a diff.
GENERATED      := proto config/crd config/rbac pkg/k8s/api testdata/bad
PROTOC_VERSION := 3.21.12

generate: ## Regenerate the gRPC code, the API's deepcopy functions, CRDs, RBAC and testdata/bad's binary files.
	@v=$$(protoc --version 2>/dev/null); [ "$$v" = "libprotoc $(PROTOC_VERSION)" ] || \
		{ echo "generate: protoc $(PROTOC_VERSION) needed (Debian 12's protobuf-compiler, hack/tools.sh), found: $${v:-none}"; exit 1; }
	$(GO) run ./hack/badcorpus
	@mkdir -p $(BIN)/gen
	$(GO) build -o $(BIN)/gen/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto
	protoc --plugin=protoc-gen-go=$(BIN)/gen/protoc-gen-go --plugin=protoc-gen-go-grpc=$(BIN)/gen/protoc-gen-go-grpc \
		--plugin=protoc-gen-go-vtproto=$(BIN)/gen/protoc-gen-go-vtproto \
		-I proto -I /usr/include --go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		--go-vtproto_out=proto --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size \
		proto/bpfd/v1/bpfd.proto proto/bpfd/v1/inventory.proto proto/bpfd/v1/maps.proto
	$(GO) build -o $(BIN)/gen/ sigs.k8s.io/controller-tools/cmd/controller-gen
	$(BIN)/gen/controller-gen object paths=./pkg/k8s/api/...
	rm -f config/crd/bases/*.yaml config/rbac/operator/role.yaml config/rbac/agent/role.yaml
	$(BIN)/gen/controller-gen crd paths=./pkg/k8s/api/... output:crd:artifacts:config=config/crd/bases
	$(BIN)/gen/controller-gen rbac:roleName=bpfd-operator paths=./pkg/k8s/controller/operator/... output:rbac:artifacts:config=config/rbac/operator
	$(BIN)/gen/controller-gen rbac:roleName=bpfd-agent paths=./pkg/k8s/controller/agent/... output:rbac:artifacts:config=config/rbac/agent
	for f in config/crd/bases/*.yaml config/rbac/operator/role.yaml config/rbac/agent/role.yaml; do \
		{ echo '$(GEN_HEADER)'; cat $$f; } > $$f.tmp && mv $$f.tmp $$f; done

check-generate: ## Fail when make generate changes a committed file or writes one not committed.
	@$(MAKE) --no-print-directory generate >/dev/null
	@git diff --exit-code --stat -- $(GENERATED) || \
		{ echo "check-generate: make generate changed the files above; commit what it generates"; exit 1; }
	@new=$$(git ls-files --others --exclude-standard -- $(GENERATED)); [ -z "$$new" ] || \
		{ echo "check-generate: make generate wrote files not committed:"; echo "$$new"; exit 1; }

bundle: ## Regenerate the OLM bundle (bundle/, bundle.Dockerfile) from config/ and config/manifests.
	$(GO) run ./hack/bundle

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: ## The main job, told step by step: sign, verify, load, count packets, deny (as root).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/bpfd ./cmd/bpfctl ./cmd/bpfctl-image
	hack/demo.sh

bench: build tools ## Measure bpfd against its peers; prints a table, writes bench/results.json; then bench-vm.
	$(GO) run ./bench $(BENCHFLAGS)
	$(MAKE) --no-print-directory bench-vm

bench-vm: ## The dispatchers' per-packet cost in both modes on Debian's 6.1 kernel in the VM (freplace needs it).
	$(MAKE) --no-print-directory test-vm VM_PKGS=./pkg/runtime/dispatcher VM_TESTFLAGS="-run NONE -bench Chain -benchtime 5x"

clean: ## Remove build outputs (keeps bin/tools and bin/k8s).
	rm -f $(addprefix $(BIN)/,$(BINARIES))
