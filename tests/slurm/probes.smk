# Test-only workflow for tests/test_slurm.py. gpu_probe asks for a GPU and
# cpu_probe does not; each writes the CUDA_VISIBLE_DEVICES it saw into its output
# and its log (the line the CNN rule logs). retry_probe fails its first attempt,
# so the profile's retry, with more memory, can be watched from SLURM's side.


rule all:
    input:
        "gpu.txt",
        "cpu.txt",
        "retry.txt",


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
