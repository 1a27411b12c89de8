# MultiPL-T: from Python functions to low-resource-language training data, fine-tuned code
# LLMs and their MultiPL-E scores. See README.md; the logic lives in src/multiplt.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: f"{workflow.basedir}/config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/containers.smk"
include: "rules/models.smk"
include: "rules/evaluate.smk"
include: "rules/source.smk"


rule all:
    default_target: True
    input:
        evaluation_targets(),
        source_targets(),


rule evaluation:
    """MultiPL-E pass@k tables of the configured models, and the harness checks."""
    input:
        evaluation_targets(),
