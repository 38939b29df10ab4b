# Test-only workflow for tests/test_slurm.py. gpu_probe asks for a GPU and
# cpu_probe does not; each writes the CUDA_VISIBLE_DEVICES it saw into its output
# and its log (the line the CNN rule logs). retry_probe fails its first attempt,
# so the profile's retry, with more memory, can be watched from SLURM's side.
# sized_probe asks for memory and time as the baselines rule does
# (deeprules.resources), from inputs the test makes large.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir).parents[1] / "workflow"))

from deeprules.resources import stage_memory_mb, stage_runtime


rule all:
    input:
        "gpu.txt",
        "cpu.txt",
        "retry.txt",
        "sized.txt",


rule gpu_probe:
    output:
        "gpu.txt",
    log:
        "logs/gpu_probe.log",
    resources:
        gpu=1,
    shell:
        'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" | tee {output} > {log}'


rule cpu_probe:
    output:
        "cpu.txt",
    log:
        "logs/cpu_probe.log",
    shell:
        'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" | tee {output} > {log}'


rule retry_probe:
    output:
        "retry.txt",
    log:
        "logs/retry_probe.log",
    shell:
        "if [ ! -e first_attempt_failed ]; then touch first_attempt_failed; exit 1; fi; "
        "echo {resources.mem_mb} > {output} 2> {log}"


rule sized_probe:
    input:
        train="big/train.tsv",
        tune="big/tune.tsv",
    output:
        "sized.txt",
    log:
        "logs/sized_probe.log",
    resources:
        mem_mb=stage_memory_mb("baselines"),
        runtime=stage_runtime("baselines"),
    shell:
        "echo {resources.mem_mb} {resources.runtime} > {output} 2> {log}"
