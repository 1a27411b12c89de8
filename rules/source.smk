# Stages 1–2 (DESIGN.md §1): top-level Python functions with docstrings, from The Stack or
# local trees, deduplicated, filtered (return, TODO, ASCII, trivial body, pyright) and
# decontaminated, in a fixed number of shards; then one function set and its funnel.

from multiplt.source.workflow import settings_argument, shard_names, source_targets


wildcard_constraints:
    shard=r"\d{5}",


# The plan and the benchmark texts are small and need the Hub, which compute nodes often
# cannot reach: they run where Snakemake runs.
localrules:
    source_all,
    source_plan,
    source_benchmarks,


rule source_plan:
    """Split the input (files, or The Stack's parquet row groups) into the shards."""
    output:
        "results/source/plan.json",
    log:
        "logs/source/plan.log",
    conda:
        "../envs/source.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings_argument(config, workflow.basedir),
    shell:
        "python -m multiplt.source.cli plan --settings {params.settings:q} --output {output}"
        " > {log} 2>&1"


rule source_benchmarks:
    """Every text of HumanEval, MBPP (all splits) and MultiPL-E, for decontamination."""
    output:
        "results/source/benchmarks.jsonl.gz",
    log:
        "logs/source/benchmarks.log",
    conda:
        "../envs/source.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings_argument(config, workflow.basedir),
    shell:
        "python -m multiplt.source.cli benchmarks --settings {params.settings:q} --output {output}"
        " > {log} 2>&1"


rule source_shard:
    """Extract, deduplicate, filter, type-check and decontaminate one shard."""
    input:
        plan="results/source/plan.json",
        benchmarks="results/source/benchmarks.jsonl.gz",
    output:
        functions="results/source/shards/{shard}.jsonl.gz",
        funnel="results/source/shards/{shard}.funnel.json",
    log:
        "logs/source/shards/{shard}.log",
    benchmark:
        "results/benchmarks/source/shard-{shard}.tsv"
    conda:
        "../envs/source.yaml"
    threads: config["source"]["threads"]
    resources:
        # A retry (after running out of memory or time) asks for more of both.
        mem_mb=lambda wc, attempt: config["source"]["mem_mb"] * attempt,
        runtime=lambda wc, attempt: config["source"]["runtime"] * attempt,
    params:
        settings=settings_argument(config, workflow.basedir),
    shell:
        "python -m multiplt.source.cli shard --settings {params.settings:q} --plan {input.plan}"
        " --benchmarks {input.benchmarks} --shard {wildcards.shard} --threads {threads}"
        " --functions {output.functions} --funnel {output.funnel} > {log} 2>&1"


rule source_functions:
    """All shards' functions, cross-shard duplicates removed, and the funnel (JSON, Markdown)."""
    input:
        functions=expand(
            "results/source/shards/{shard}.jsonl.gz", shard=shard_names(config)
        ),
        funnels=expand(
            "results/source/shards/{shard}.funnel.json", shard=shard_names(config)
        ),
    output:
        functions="results/source/functions.jsonl.gz",
        funnel_json="results/source/funnel.json",
        funnel_markdown="results/source/funnel.md",
    log:
        "logs/source/functions.log",
    conda:
        "../envs/source.yaml"
    resources:
        mem_mb=lambda wc, input, attempt: max(4000, 3 * input.size_mb) * attempt,
        runtime=60,
    shell:
        "python -m multiplt.source.cli gather --functions {input.functions}"
        " --funnels {input.funnels} --output-functions {output.functions}"
        " --output-json {output.funnel_json} --output-markdown {output.funnel_markdown}"
        " > {log} 2>&1"


rule source_all:
    """Target: the function set and its funnel (`snakemake source_all`)."""
    input:
        source_targets(),
