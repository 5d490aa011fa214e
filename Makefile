# The two commands of README.md. Both run the idempotent set-up first.
#
# The target directory lives outside the clone so repeated CI runs on the same
# machine build incrementally; a fresh machine simply builds from scratch.
CARGO_TARGET_DIR ?= $(HOME)/.cache/nexmile/target
export CARGO_TARGET_DIR
# What scripts/setup.sh fetched: ONNX Runtime and the test photograph.
NEXMILE_CACHE ?= $(HOME)/.cache/nexmile
export NEXMILE_CACHE

.PHONY: run test setup package fuzz

setup:
	./scripts/setup.sh

# The main job: server + partner demo + two headless apps in a 20-second call.
run: setup
	./scripts/run-demo.sh

# Every test, with the formatting and lint gates.
test: setup
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo test --locked --workspace
	cd ui && npm test --silent

# The desktop app's installers for this platform: a .deb and an AppImage
# under $(CARGO_TARGET_DIR)/release/bundle (set-up provides the bundler's tools).
package: setup
	ui/node_modules/.bin/tauri build --bundles deb,appimage

# Coverage-guided fuzzing of every parser of untrusted bytes (afl++), never
# in CI: FUZZ_SECONDS per target (default 300). See scripts/fuzz.sh.
fuzz: setup
	./scripts/fuzz.sh
