# bpfd — build, test and demo. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := build

GO        ?= go
BIN       := $(CURDIR)/bin
TOOLS     := $(BIN)/tools
K8S       := $(BIN)/k8s
BINARIES  := bpfctl-image bpfd bpfctl bpfd-agent bpfd-operator
PKGS      ?= ./...
TESTFLAGS ?= -timeout 30m

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
# Objects the tests load, e.g. programs the verifier must reject.
TESTDATA_BPF_SRCS := $(wildcard pkg/*/testdata/*.bpf.c)
TESTDATA_BPF_OBJS := $(TESTDATA_BPF_SRCS:.c=.o)

.PHONY: help build test tools bytecode lint generate demo clean

help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build the five binaries into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

tools: ## Install or build every external component the tests use (idempotent).
	hack/tools.sh

test: tools ## Run every test this machine can run.
	$(GO) test $(TESTFLAGS) $(PKGS)

bytecode: $(BPF_OBJS) $(TESTDATA_BPF_OBJS) ## Rebuild bytecode/*.bpf.o and the tests' objects with Debian's clang.

bytecode/%.bpf.o: bytecode/%.bpf.c bytecode/common.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

pkg/%.bpf.o: pkg/%.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	llvm-strip -g $@

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: ## The main job (placeholder until the daemon lands).
	@echo "make demo: the end-to-end demo arrives with the bpfd daemon."

clean: ## Remove build outputs (keeps bin/tools and bin/k8s).
	rm -f $(addprefix $(BIN)/,$(BINARIES))
