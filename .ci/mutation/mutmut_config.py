"""mutmut 2 configuration for dit-mini's mutation run (see notebooks/MEASUREMENTS.md).

Each mutated file runs only the tests that exercise it (through forkserver.py), and mutants of
lines that only build a message (an error text, a help string, a docstring) are skipped: they
change what a person reads, not what the package computes.
"""

import os
import sys

SOCKET = os.environ.get("MUTATION_SOCKET", "/tmp/dit_mini_mutation.sock")
PYTEST = ["-x", "-q", "-p", "no:cacheprovider"]
TESTS = {
    "dit_mini/diffusion/losses.py": ["tests/test_flow_loss.py", "tests/test_diffusion.py"],
    "dit_mini/diffusion/samplers.py": [
        "tests/test_samplers.py",
        "tests/test_reference_steps.py",
        "tests/test_flow_loss.py",
    ],
    "dit_mini/diffusion/schedules.py": ["tests/test_schedules.py", "tests/test_diffusion.py"],
    "dit_mini/diffusion/guidance.py": ["tests/test_guidance.py"],
    "dit_mini/train/step.py": ["tests/test_step.py"],
    "dit_mini/train/config.py": ["tests/test_step.py", "tests/test_train.py"],
    "dit_mini/train/session.py": ["tests/test_step.py", "tests/test_train.py"],
    "dit_mini/models/embeddings.py": ["tests/test_embeddings.py", "tests/test_dit.py"],
    "dit_mini/models/attention.py": ["tests/test_attention.py"],
    "dit_mini/models/dit_block.py": ["tests/test_conditioning.py", "tests/test_dit.py"],
    "dit_mini/models/dit.py": ["tests/test_dit.py", "tests/test_pretrained.py"],
}
MESSAGE_STARTS = ('"', 'f"', "'", "raise ", "help=", "metadata=", "#")


def pre_mutation(context):
    line = context.current_source_line.strip()
    if line.startswith(MESSAGE_STARTS) or context.filename not in TESTS:
        context.skip = True
        return
    tests = TESTS[context.filename]
    forkserver = ".ci/mutation/forkserver.py"  # mutmut runs from the repository's root
    context.config.test_command = (
        f"{sys.executable} {forkserver} run {SOCKET} -- {' '.join(PYTEST + tests)}"
    )
