# Apptainer images, one per language, built from containers/<lang>.def.
#
# An image is <image_dir>/<lang>-<version>.sif after config["containers"]; bumping a
# language's version names a new image, so every job that takes container_image(lang) as
# input reruns. A language with no configured version is at version "1", as in
# multiplt.execution.sandbox.make_sandbox. Building needs the network (Docker Hub,
# snapshot.debian.org, Julia's downloads) and fakeroot, so it runs where Snakemake runs,
# never on a compute node. (Lambdas, not functions: `snakemake --lint` wants no functions
# beside rules.)

container_version = lambda lang: str(config["containers"]["versions"].get(lang, "1"))
container_image = (
    lambda lang: f"{config['containers']['image_dir']}/{lang}-{container_version(lang)}.sif"
)


rule build_container:
    """Build one image with the host's Apptainer (`apptainer build --fakeroot`).

    Apptainer is a site install with its own fakeroot set-up, not something a conda
    environment or a container can provide, hence `run:` and not `shell:` plus `conda:`.
    The image's %test section runs at the end of the build.
    """
    input:
        definition=f"{workflow.basedir}/containers/{{lang}}.def",
    output:
        image=f"{config['containers']['image_dir']}/{{lang}}-{{version}}.sif",
    log:
        "logs/containers/{lang}-{version}.log",
    benchmark:
        "benchmarks/containers/{lang}-{version}.tsv"
    wildcard_constraints:
        version="[A-Za-z0-9._-]+",
    localrule: True
    resources:
        mem_mb=4000,
        runtime=60,
    run:
        shell(
            "apptainer build --fakeroot --force {output.image:q} {input.definition:q} > {log:q} 2>&1"
        )


rule containers:
    """Every image the configured languages need (Python too, for test validation)."""
    input:
        [container_image(lang) for lang in sorted({"py", *config["languages"]})],
