"""CNN input streamed from memory-mapped token files (issue 20): the same batches, the same model.

`cnn.in_memory_max_mb: 0` forces the streamed path on data small enough for
memory, so both paths can be compared on one planted-motif set: batch by batch
(shuffled, reverse-complemented), and as whole stages (trials, chosen
hyperparameters, weights, predictions).
"""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
from test_cnn import planted_motif_table, stage_job

from deeprules import cnn, encoding
from deeprules.cnn.data import input_pipeline, load_partitions
from deeprules.cnn.job import prepare_spec
from deeprules.cnn.model import build_model
from deeprules.cnn.predict import CHUNK_BATCHES, class_columns, predict_proba
from deeprules.cnn.streaming import IN_MEMORY, STREAMED, input_plan
from deeprules.config import validate_run_config
from deeprules.io import read_json, read_tsv
from deeprules.report.scorecard import tip5

SPACE = {"conv_blocks": [1], "filters": [8, 16], "kernel_size": [5, 9], "dense_units": [0]}


def batches(part, table, epochs: int, **pipeline: object) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (one-hot, target) batch of `epochs` passes over one pipeline."""
    data = input_pipeline(part, table, 32, **pipeline)
    return [(x.numpy(), y.numpy()) for _ in range(epochs) for x, y in data]


def test_input_plan_streams_above_the_threshold_and_says_why():
    small = input_plan({"in_memory_max_mb": 1000}, 3_676, 97, "protein", "t")
    assert not small["streamed"] and small["path"] == IN_MEMORY
    assert small["one_hot_mb"] == pytest.approx(3_676 * 97 * 20 * 4 / 1e6, abs=1e-3)  # amp-like
    big = input_plan({"in_memory_max_mb": 1000}, 2_000_000, 500, "dna", "t")
    assert big["streamed"] and big["path"] == STREAMED
    assert big["one_hot_mb"] == 16_000 and big["tokens_mb"] == 1_000
    assert big["folder"] == str(Path("t") / "encoded")
    assert input_plan({"in_memory_max_mb": 0}, 1, 1, "dna", "t")["streamed"]


def test_streamed_batches_equal_in_memory_batches_and_files_are_reused(tmp_path):
    spec = prepare_spec(stage_job(tmp_path, trials=1, n_train=150, in_memory_max_mb=0))
    assert spec["input"]["streamed"]
    train, tune = load_partitions(spec)
    in_memory = {**spec, "input": {**spec["input"], "streamed": False}}
    memory_train, memory_tune = load_partitions(in_memory)
    assert train.streamed and tune.streamed and not memory_train.streamed
    np.testing.assert_array_equal(train.tokens, memory_train.tokens)
    table = encoding.token_table("dna")

    options = {"shuffle_seed": 11, "reverse_complement": True}
    streamed = batches(train, table, epochs=2, **options)
    held = batches(memory_train, table, epochs=2, **options)
    assert len(streamed) == len(held) == 2 * 5  # 150 rows in batches of 32, two epochs
    for (x, y), (x_held, y_held) in zip(streamed, held, strict=True):
        np.testing.assert_array_equal(x, x_held)
        np.testing.assert_array_equal(y, y_held)
    # the equality is not trivial: rows are shuffled, reshuffled each epoch, some flipped
    plain = batches(memory_train, table, epochs=1)
    assert not np.array_equal(streamed[0][0], plain[0][0])
    assert not np.array_equal(streamed[0][0], streamed[5][0])
    unflipped = batches(memory_train, table, epochs=1, shuffle_seed=11)
    assert not np.array_equal(streamed[0][0], unflipped[0][0])
    for (x, y), (x_held, y_held) in zip(
        batches(tune, table, 1), batches(memory_tune, table, 1), strict=True
    ):
        np.testing.assert_array_equal(x, x_held)
        np.testing.assert_array_equal(y, y_held)

    folder = Path(spec["input"]["folder"])
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["train.json", "train.tokens.npy", "tune.json", "tune.tokens.npy"]
    written = (folder / "train.tokens.npy").stat().st_mtime_ns
    load_partitions(spec)  # same stamp: reused, not written again
    assert (folder / "train.tokens.npy").stat().st_mtime_ns == written
    changed = {**spec, "data_sha256": {**spec["data_sha256"], "train": "0" * 64}}
    load_partitions(changed)  # another partition file: encoded again
    assert (folder / "train.tokens.npy").stat().st_mtime_ns != written
    assert read_json(folder / "train.json")["sha256"] == "0" * 64


def test_predict_proba_in_chunks_equals_one_pass(tmp_path):
    """Scoring other stages' sequences (evaluate's test set) one-hot encodes them a chunk of
    whole batches at a time; every batch, and so every probability, is as in one pass."""
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    keras.utils.set_random_seed(0)
    path = tmp_path / "model.keras"
    build_model(kt.HyperParameters(), 60, 4, classes=2, space=space).save(path)
    summary = {
        "classes": ["unbound", "bound"],
        "encoding": {"sequence_type": "dna", "length": 60, "mask_padding": True},
    }
    sequences = planted_motif_table(3 * 4 * CHUNK_BATCHES + 5, seed=3)["sequence"].tolist()
    chunked = predict_proba(path, sequences, summary, batch=4)  # 3 chunks and a bit
    whole = keras.saving.load_model(path).predict(
        encoding.one_hot(sequences, "dna", 60), batch_size=4, verbose=0
    )
    np.testing.assert_array_equal(chunked, class_columns(whole))
    assert predict_proba(path, [], summary).shape == (0, 2)


def run_stage(workdir: Path, **cnn_section: object) -> dict[str, object]:
    """The whole stage on the same planted set; what the comparison needs."""
    job = stage_job(
        workdir,
        trials=3,
        n_train=200,
        max_epochs=3,
        reverse_complement=True,
        search_space=SPACE,
        **cnn_section,
    )
    cnn.run(job)
    return {
        "summary": read_json(job.outputs["summary"]),
        "best": read_json(job.outputs["hyperparameters"]),
        "trials": read_tsv(job.outputs["trials"]).drop(columns=["seconds"]),
        "weights": keras.saving.load_model(job.outputs["model"]).get_weights(),
        "predictions": read_tsv(job.outputs["predictions"]),
        "encoded": Path(job.outputs["summary"]).parent / "tuner" / "encoded",
    }


def test_streamed_stage_gives_the_same_search_and_model_as_in_memory(tmp_path):
    held = run_stage(tmp_path / "memory")
    streamed = run_stage(tmp_path / "streamed", in_memory_max_mb=0)

    assert held["summary"]["input_pipeline"]["streamed"] is False
    plan = streamed["summary"]["input_pipeline"]
    assert plan["streamed"] is True and plan["path"] == STREAMED and plan["one_hot_mb"] > 0
    assert not streamed["encoded"].exists(), "the token files outlived the stage"
    # the search: every trial's score and hyperparameters, and the one chosen
    assert len(held["trials"]) == 3
    pd.testing.assert_frame_equal(streamed["trials"], held["trials"])
    assert streamed["best"] == held["best"]
    # the refitted model, weight for weight (deterministic ops, same batches)
    for a, b in zip(streamed["weights"], held["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    scores = [c for c in held["predictions"].columns if c.startswith("score_")]
    np.testing.assert_array_equal(
        streamed["predictions"][scores].to_numpy(float),
        held["predictions"][scores].to_numpy(float),
    )
    assert (
        "streamed from memory-mapped token files"
        in tip5({"cnn": streamed["summary"]}, {})["evidence"]
    )
    assert "streamed" not in tip5({"cnn": held["summary"]}, {})["evidence"]
