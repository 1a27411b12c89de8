# Evaluation of MultiPL-E completion files: completions -> results -> pass@k.


rule reference_completions:
    """HumanEval's canonical Python solutions under MultiPL-E's Python prompts."""
    input:
        problems=multipl_e_file("humaneval", "py"),
    output:
        directory("results/completions/humaneval-py-reference"),
    log:
        "logs/completions/humaneval-py-reference.log",
    group:
        "completions"
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m multiplt reference-completions --problems {input.problems} --out {output} > {log} 2>&1"


rule handwritten_completions:
    """A right and a wrong hand-written completion for a few problems of one language."""
    input:
        problems=lambda wc: multipl_e_file("humaneval", wc.lang),
        answers=f"{workflow.basedir}/tests/data/handwritten_completions.json",
    output:
        directory("results/completions/handwritten-{lang}"),
    log:
        "logs/completions/handwritten-{lang}.log",
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


rule evaluate_completions:
    """Run every completion in the sandbox; progress survives a failed job (checkpoint/)."""
    input:
        completions=lambda wc: completion_dir(wc.name),
        images=sandbox_images(),
    output:
        directory("results/evaluation/{name}"),
    log:
        "logs/evaluation/{name}.log",
    group:
        "evaluation"
    conda:
        "../envs/multiplt.yaml"
    threads: config["execution"]["workers"]
    resources:
        # A quarter of the workers at their memory limit at once; on each retry a quarter
        # more, up to all of them.
        mem_mb=lambda wc, threads, attempt: 2000
        + threads * config["execution"]["memory_mb"] * min(attempt, 4) // 4,
        runtime=240,
    params:
        checkpoints="results/evaluation/.checkpoints/{name}",
        engine=execution_options(),
    shell:
        "python -m multiplt evaluate {input.completions} --output-dir {output} --checkpoint-dir {params.checkpoints}"
        " --workers {threads} {params.engine} > {log} 2>&1"


rule pass_at_k:
    """MultiPL-E's pass@k table for one results directory."""
    input:
        "results/evaluation/{name}",
    output:
        "results/pass_at_k/{name}.csv",
    log:
        "logs/pass_at_k/{name}.log",
    localrule: True
    conda:
        "../envs/multiplt.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m multiplt pass-k {input} --output {output} > {log} 2>&1"
