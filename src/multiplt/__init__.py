"""MultiPL-T: training data for low-resource programming languages, as a Snakemake workflow."""

__version__ = "0.1.0"
