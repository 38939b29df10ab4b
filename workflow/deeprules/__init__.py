"""deeprules: the Ten Quick Tips for Deep Learning in Biology as a Snakemake workflow."""

__version__ = "0.1.0"
