# Config lookups and wildcard constraints shared by every stage.

import json
import os
import sys
from pathlib import Path

# Rule files import their helpers from the package (where they are tested); this makes
# the checkout's package importable whether or not it is installed.
sys.path.insert(0, f"{workflow.basedir}/src")


wildcard_constraints:
    lang="py|jl|lua|ml|r|rkt",
    name="[A-Za-z0-9_.-]+",


# Rules call the package as `python -m multiplt`; pointing PYTHONPATH at the checkout's
# src/ makes that work with or without `pip install`, in per-rule conda environments and
# in cluster jobs (which evaluate this file again).
os.environ.update(PYTHONPATH=f"{workflow.basedir}/src")


def multipl_e_file(benchmark, lang):
    """A local MultiPL-E prompts file (offline copy of the hub dataset)."""
    # Relative paths in the config are relative to the repository, wherever Snakemake runs.
    directory = Path(workflow.basedir, config["benchmarks"]["multipl_e_dir"])
    return str(directory / f"{benchmark}-{lang}-reworded.jsonl")


def completion_dir(name):
    try:
        return config["evaluation"]["completion_dirs"][name]
    except KeyError:
        raise ValueError(
            f"config key evaluation.completion_dirs has no entry {name!r}"
        ) from None


def sandbox_images():
    """Images a code-running job depends on, so that a rebuilt image reruns it."""
    if config["execution"]["sandbox"] != "apptainer":
        return []
    return [container_image(lang) for lang in sorted({"py", *config["languages"]})]


def execution_options():
    """The execution engine's settings as command-line options of `multiplt`."""
    execution = config["execution"]
    options = [
        f"--sandbox {execution['sandbox']}",
        f"--memory-mb {execution['memory_mb']}",
        f"--processes {execution['processes']}",
        f"--output-bytes {execution['output_bytes']}",
        f"--timeouts '{json.dumps(execution['timeouts'])}'",
        f"--image-dir {config['containers']['image_dir']}",
        f"--image-versions '{json.dumps(config['containers']['versions'])}'",
    ]
    if not execution["warm_runtimes"]:
        options.append("--cold")
    return " ".join(options)


def evaluation_targets():
    return expand(
        "results/pass_at_k/{name}.csv",
        name=config["evaluation"]["completion_dirs"],
    )
