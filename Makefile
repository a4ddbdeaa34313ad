# The two commands of the README, and a few helpers.
.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

# Set everything up and run the main job on the bundled sample.
demo: setup
	.venv/bin/r1data run pipelines/web.yaml
	.venv/bin/r1data stats out/web 2>/dev/null || true

# Set everything up and run the whole test suite (what CI runs).
test: setup
	bash scripts/test.sh

clean:
	rm -rf out
