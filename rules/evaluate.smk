# MultiPL-E evaluation (DESIGN.md §7-8): problems -> completions -> results -> pass@k ->
# tables. A run is <model>/<setting>/<benchmark>-<lang>; the harness checks and completion
# directories given in the config use the same three-part names.


rule benchmark_problems:
    """One benchmark in one language, from local files or the hub, known defects mended."""
    output:
        problems="results/problems/{benchmark}-{lang}.jsonl",
        provenance="results/problems/{benchmark}-{lang}.provenance.json",
    log:
        "logs/problems/{benchmark}-{lang}.log",
    localrule: True
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        source=problem_source_options(),
    shell:
        "python -m multiplt problems --benchmark {wildcards.benchmark} --language {wildcards.lang}"
        " {params.source} --out {output.problems} > {log} 2>&1"


rule generate_completions:
    """Sample a model on one benchmark; progress survives a failed job (the checkpoint)."""
    input:
        problems="results/problems/{benchmark}-{lang}.jsonl",
        model=lambda wc: model_inputs(wc.model),
    output:
        directory("results/completions/{model}/{setting}/{benchmark}-{lang}"),
    log:
        "logs/completions/{model}/{setting}/{benchmark}-{lang}.log",
    benchmark:
        "results/benchmarks/completions/{model}/{setting}/{benchmark}-{lang}.tsv"
    wildcard_constraints:
        model=configured_models_pattern(),
    conda:
        "../envs/generation.yaml"
    threads: 4
    resources:
        gpu=lambda wc: model_gpus(wc.model),
        cpus_per_gpu=lambda wc: 4 if model_gpus(wc.model) else 0,
        mem_mb=lambda wc, attempt: 32000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        model=lambda wc: model_argument(wc.model),
        sampling=lambda wc: sampling_options(wc.setting),
        generation=generation_options(),
        limit=problem_limit_option(),
        checkpoint="results/completions/{model}/{setting}/{benchmark}-{lang}.checkpoint.jsonl",
    shell:
        "python -m multiplt generate complete --model {params.model} --problems {input.problems}"
        " --out {output} --checkpoint {params.checkpoint} {params.sampling} {params.limit}"
        " {params.generation} --threads {threads} --quiet > {log} 2>&1"


rule reference_completions:
    """HumanEval's canonical Python solutions under MultiPL-E's Python prompts."""
    input:
        problems="results/problems/humaneval-py.jsonl",
    output:
        directory("results/completions/reference/pass1/humaneval-py"),
    log:
        "logs/completions/reference/humaneval-py.log",
    group:
        "completions"
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m multiplt reference-completions --problems {input.problems} --out {output}"
        " > {log} 2>&1"


rule handwritten_completions:
    """A right and a wrong hand-written completion for a few problems of one language."""
    input:
        problems="results/problems/humaneval-{lang}.jsonl",
        answers=f"{workflow.basedir}/tests/data/handwritten_completions.json",
    output:
        directory("results/completions/handwritten/pass1/humaneval-{lang}"),
    log:
        "logs/completions/handwritten/humaneval-{lang}.log",
    group:
        "completions"
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m multiplt reference-completions --problems {input.problems}"
        " --handwritten {input.answers} --out {output} > {log} 2>&1"


rule given_completions:
    """A directory of completion files named in evaluation.completion_dirs, copied in."""
    input:
        lambda wc: completion_dir(wc.name),
    output:
        directory("results/completions/given/pass1/{name}"),
    log:
        "logs/completions/given/{name}.log",
    localrule: True
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    shell:
        "(mkdir -p {output} && cp {input}/*.json.gz {output}/) > {log} 2>&1"


rule evaluate_completions:
    """Run every completion in the sandbox; progress survives a failed job (checkpoints/)."""
    input:
        completions="results/completions/{run}",
        images=sandbox_images(),
    output:
        directory("results/evaluation/{run}"),
    log:
        "logs/evaluation/{run}.log",
    group:
        "evaluation"
    conda:
        "../envs/multiplt.yaml"
    threads: config["execution"]["workers"]
    resources:
        mem_mb=lambda wc, threads, attempt: (
            2000 + threads * config["execution"]["memory_mb"] // 4 * attempt
        ),
        runtime=240,
    params:
        checkpoints="results/evaluation/.checkpoints/{run}",
        engine=execution_options(),
    shell:
        "python -m multiplt evaluate {input.completions} --output-dir {output}"
        " --checkpoint-dir {params.checkpoints} --workers {threads} {params.engine} > {log} 2>&1"


rule pass_at_k:
    """MultiPL-E's pass@k table of one run, and its summary with a bootstrap interval."""
    input:
        "results/evaluation/{run}",
    output:
        table="results/pass_at_k/{run}.csv",
        summary="results/pass_at_k/{run}.json",
    log:
        "logs/pass_at_k/{run}.log",
    localrule: True
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        labels=lambda wc: run_labels(wc.run),
    shell:
        "(python -m multiplt pass-k {input} --output {output.table}"
        " && python -m multiplt summarize {input} {params.labels} --out {output.summary})"
        " > {log} 2>&1"


rule pass_at_k_tables:
    """pass@k per language and model with 95% intervals (CSV, Markdown, LaTeX, figure), for
    every configured language (scope `all`) or one (scope `lua`, ...)."""
    input:
        lambda wc: summaries_for(wc.setting, wc.scope),
    output:
        csv=report("results/tables/{setting}/{scope}.csv", category="pass@k"),
        markdown="results/tables/{setting}/{scope}.md",
        latex="results/tables/{setting}/{scope}.tex",
        figure=report("results/figures/{setting}/{scope}.png", category="pass@k"),
    log:
        "logs/tables/{setting}/{scope}.log",
    wildcard_constraints:
        scope="all|py|jl|lua|ml|r|rkt",
    localrule: True
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        prefix="results/tables/{setting}/{scope}",
    shell:
        "python -m multiplt tables {input} --out-prefix {params.prefix}"
        " --figure {output.figure} > {log} 2>&1"
