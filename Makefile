.DEFAULT_GOAL := help
.PHONY: help build test bench quality example schema generate scale-demo fuzz load soak leak

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build the CLI (target/release/remotemedia)
	cargo build --release

test: ## Run the whole test suite (what CI runs)
	bash scripts/test-all.sh

bench: ## Run the criterion benchmarks
	cargo bench -p remotemedia-nodes --bench nodes \&\& cargo bench -p remotemedia-core --bench orchestration

quality: ## Measure resampler quality (docs/resampling.md)
	cargo run --release -p remotemedia-nodes --example resample_quality

example: build ## Run the bundled example
	./target/release/remotemedia run examples/speech_and_segments.json --input examples/speech_48k.wav --output out/

schema: ## Regenerate schema/manifest.v1.schema.json and the golden error messages
	REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-core --test manifests

generate: schema ## Regenerate everything made from the node definitions (Python classes, node docs, README table, schema)
	REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-nodes --test generated

scale-demo: ## Three replicas behind haproxy: call split, added latency, restart scenarios
	bash scripts/scale-demo.sh

fuzz: ## Fuzz every cargo-fuzz target 600 s (FUZZ_SECONDS=...; needs nightly + cargo-fuzz)
	bash scripts/fuzz.sh

load: ## 200 concurrent gRPC streams for 180 s against remotemedia serve (docs/reliability.md)
	bash scripts/load_soak.sh load 200 180

soak: ## One gRPC stream for 30 minutes with the server's RSS sampled
	bash scripts/load_soak.sh soak 1800

leak: ## 10,000 rounds of runs from Python with RSS sampled (needs the package installed)
	$${PYTHON:-python3} scripts/leak_runs.py --runs 10000
