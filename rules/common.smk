# Config lookups and wildcard constraints shared by every stage.

import json
import os
import re
import shlex
import sys
from pathlib import Path

# Rule files import their helpers from the package (where they are tested); this makes
# the checkout's package importable whether or not it is installed.
sys.path.insert(0, f"{workflow.basedir}/src")


wildcard_constraints:
    lang="py|jl|lua|ml|r|rkt",
    benchmark="humaneval|mbpp",
    setting="pass1|pass10",
    model="[A-Za-z0-9_.-]+",
    name="[A-Za-z0-9_.-]+",
    run="[A-Za-z0-9_.-]+/pass1(0)?/[A-Za-z0-9_.-]+",


# Rules call the package as `python -m multiplt`; pointing PYTHONPATH at the checkout's
# src/ makes that work with or without `pip install`, in per-rule conda environments and
# in cluster jobs (which evaluate this file again).
os.environ.update(PYTHONPATH=f"{workflow.basedir}/src")

# Samples and temperature of each setting: pass@1 as configured (the paper: 20 at 0.2);
# pass@10 and pass@100 from 200 samples at 0.8, as MultiPL-E reports them.
SETTINGS = {
    "pass1": lambda: (
        config["evaluation"]["samples"],
        config["evaluation"]["temperature"],
        1,
    ),
    "pass10": lambda: (200, 0.8, 10),
}


def repository_path(path):
    """Relative paths in the config are relative to the repository, wherever Snakemake runs."""
    return Path(workflow.basedir, path)


def problem_source_options():
    benchmarks = config["benchmarks"]
    options = [f"--hub-dataset {benchmarks['hub_dataset']}"]
    options.append(f"--hub-revision {benchmarks['hub_revision']}")
    if benchmarks["multipl_e_dir"]:
        options.append(f"--local-dir {repository_path(benchmarks['multipl_e_dir'])}")
    if not benchmarks["repair"]:
        options.append("--verbatim")
    return " ".join(options)


def problem_limit_option():
    limit = config["evaluation"]["problem_limit"]
    return f"--limit {limit}" if limit else ""


# Run names that are not models: completions with known answers, and given directories.
CHECK_RUN_OWNERS = ("reference", "handwritten", "given")


def configured_models_pattern():
    """Only configured models are sampled; a check run's owner is never taken for one."""
    clashes = sorted(set(config["models"]) & set(CHECK_RUN_OWNERS))
    if clashes:
        raise ValueError(f"config key models: {clashes[0]!r} is a reserved name")
    return "|".join(re.escape(model) for model in config["models"])


def model_spec(model):
    try:
        return config["models"][model]
    except KeyError:
        raise ValueError(f"config key models has no entry {model!r}") from None


def model_inputs(model):
    """The local model directory a job needs as input (none for hub models)."""
    spec = model_spec(model)
    if "embedded" in spec:
        return f"resources/models/{model}"
    return str(repository_path(spec["path"])) if "path" in spec else []


def model_argument(model):
    spec = model_spec(model)
    return spec["hub"] if "hub" in spec else model_inputs(model)


def model_gpus(model):
    return model_spec(model).get("gpus", 0)


def sampling_options(setting):
    samples, temperature, _ = SETTINGS[setting]()
    evaluation = config["evaluation"]
    return (
        f"--n {samples} --temperature {temperature} --top-p {evaluation['top_p']}"
        f" --max-tokens {evaluation['max_new_tokens']} --seed {config['generation']['seed']}"
    )


def generation_options():
    generation = config["generation"]
    options = [f"--backend {generation['backend']}", f"--dtype {generation['dtype']}"]
    if generation["batch_size"]:
        options.append(f"--batch-size {generation['batch_size']}")
    if generation.get("compile", False):
        options.append("--compile")
    return " ".join(options)


def completion_dir(name):
    try:
        return str(repository_path(config["evaluation"]["completion_dirs"][name]))
    except KeyError:
        raise ValueError(
            f"config key evaluation.completion_dirs has no entry {name!r}"
        ) from None


def run_labels(run):
    """`summarize` options for a run <model>/<setting>/<benchmark>-<lang>."""
    model, setting, task = run.split("/")
    benchmark, _, lang = task.rpartition("-")
    k = SETTINGS[setting]()[2]
    return f"--model {model} --benchmark {benchmark} --language {lang} --k {k}"


def available_benchmark(benchmark, lang):
    """Offline, a benchmark exists only where its file does (MBPP in OCaml is hub-only)."""
    directory = config["benchmarks"]["multipl_e_dir"]
    if not directory:
        return True
    return (repository_path(directory) / f"{benchmark}-{lang}-reworded.jsonl").exists()


def settings():
    return ["pass1", "pass10"] if config["evaluation"]["pass_at_10"] else ["pass1"]


def model_runs(setting, languages):
    evaluation = config["evaluation"]
    return [
        f"{model}/{setting}/{benchmark}-{lang}"
        for model in evaluation["models"]
        for benchmark in evaluation["benchmarks"]
        for lang in languages
        if available_benchmark(benchmark, lang)
    ]


def summaries_for(setting, scope):
    """Summaries behind a table: every configured language, or the one named by scope."""
    languages = config["languages"] if scope == "all" else [scope]
    return [f"results/pass_at_k/{run}.json" for run in model_runs(setting, languages)]


def check_runs():
    """Completions with known answers, and directories given in the config."""
    runs = [f"given/pass1/{name}" for name in config["evaluation"]["completion_dirs"]]
    if config["evaluation"]["harness_checks"]:
        runs.append("reference/pass1/humaneval-py")
        runs += [f"handwritten/pass1/humaneval-{lang}" for lang in config["languages"]]
    return runs


def evaluation_targets():
    targets = [f"results/pass_at_k/{run}.csv" for run in check_runs()]
    if config["evaluation"]["models"]:
        targets += expand("results/tables/{setting}/all.md", setting=settings())
    return targets


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
        f"--timeouts {shlex.quote(json.dumps(execution['timeouts']))}",
        f"--image-dir {config['containers']['image_dir']}",
        f"--image-versions {shlex.quote(json.dumps(config['containers']['versions']))}",
    ]
    if not execution["warm_runtimes"]:
        options.append("--cold")
    return " ".join(options)
