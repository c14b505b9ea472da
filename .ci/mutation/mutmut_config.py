"""mutmut 2 configuration for dit-mini's mutation run (see notebooks/MEASUREMENTS.md).

The run is time-boxed on a loaded 2-core machine, so it mutates the functions that compute
training and sampling (`FUNCTIONS`, by qualified name; a file listed with None: all of it),
runs only the tests that exercise each file (`TESTS`, through forkserver.py), and skips
mutants of lines that only build a message (an error text, a help string): they change what
a person reads, not what the package computes.
"""

import ast
import functools
import os
import sys

SOCKET = os.environ.get("MUTATION_SOCKET", "/tmp/dit_mini_mutation.sock")
PYTEST = ["-x", "-q", "-p", "no:cacheprovider"]
TESTS = {
    "dit_mini/diffusion/losses.py": ["tests/test_flow_loss.py", "tests/test_diffusion.py"],
    "dit_mini/train/step.py": ["tests/test_step.py"],
    "dit_mini/train/session.py": ["tests/test_step.py", "tests/test_train.py"],
    "dit_mini/train/config.py": ["tests/test_step.py", "tests/test_train.py"],
    "dit_mini/diffusion/samplers.py": [
        "tests/test_flow_loss.py", "tests/test_samplers.py", "tests/test_reference_steps.py",
    ],
    "dit_mini/models/embeddings.py": ["tests/test_embeddings.py", "tests/test_dit.py"],
    "dit_mini/models/dit_block.py": ["tests/test_conditioning.py", "tests/test_dit.py"],
}  # fmt: skip
FUNCTIONS = {
    "dit_mini/diffusion/losses.py": {"DiffusionLoss.draw", "DiffusionLoss.__call__"},
    "dit_mini/train/step.py": None,
    "dit_mini/train/session.py": {"TrainingSession.train_step", "TrainingSession.batch"},
    "dit_mini/train/config.py": {
        "TrainConfig.lr_at", "TrainConfig.ema_decay_at", "batch_indices", "resolve_dropout",
    },
    "dit_mini/diffusion/samplers.py": {
        "ddpm_step", "ddim_step", "denoising_steps", "euler_sample", "FlowAsEps.__call__",
        "draw_noise", "flow_timesteps",
    },
    "dit_mini/models/embeddings.py": {
        "timestep_embedding", "drop_labels", "LabelEmbedder.token_drop", "LabelEmbedder.forward",
    },
    "dit_mini/models/dit_block.py": {"modulate", "DiTBlock.forward", "FinalLayer.forward"},
}  # fmt: skip
MESSAGE_STARTS = ('"', 'f"', "'", "raise ", "help=", "metadata=", "#")


@functools.cache
def _function_lines(filename: str) -> dict[int, str]:
    """{line: qualified name of the innermost function holding it} for one source file."""
    with open(filename) as f:  # the original: mutmut restores it before the next mutant
        tree = ast.parse(f.read())
    lines = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, ast.FunctionDef):
                    for line in range(child.lineno, child.end_lineno + 1):
                        lines[line] = name
                visit(child, name + ".")

    visit(tree, "")
    return lines


def pre_mutation(context):
    line = context.current_source_line.strip()
    wanted = FUNCTIONS.get(context.filename, set())
    where = _function_lines(context.filename).get(context.current_line_index + 1)
    if line.startswith(MESSAGE_STARTS) or (wanted is not None and where not in wanted):
        context.skip = True
        return
    forkserver = ".ci/mutation/forkserver.py"  # mutmut runs from the repository's root
    tests = " ".join(PYTEST + TESTS[context.filename])
    context.config.test_command = f"{sys.executable} {forkserver} run {SOCKET} -- {tests}"
