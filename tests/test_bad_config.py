"""The bad-input corpus, configuration half: dataset files and run configs.

Each case asserts the error (which stops Snakemake before any job: common.smk
turns it into a WorkflowError) and a message naming the file and the key, or the
line and column of a YAML syntax error. The data half is tests/test_bad_input.py.
"""

from __future__ import annotations

import pytest
from conftest import write_yaml
from test_bad_input import assert_matches, table_source, two_sources

from deeprules.config import config_layers, load_dataset, load_datasets, validate_run_config
from deeprules.config_checks import check_yaml_syntax
from deeprules.io import InputError

# --- the dataset file ----------------------------------------------------------------

GOOD = two_sources()
DATASET_FILE_CASES = [
    (
        "YAML syntax error",
        "sequence_type: dna\nsources: [\n  {name: a\n",
        r"toy\.yaml, line \d+, column \d+: not valid YAML",
    ),
    (
        "tab indentation",
        "sequence_type: dna\nlabels:\n\tfrom: source\n",
        r"toy\.yaml, line 3, column 1: not valid YAML: found character '\\t'",
    ),
    ("not a mapping", "- dna\n- protein\n", r"toy\.yaml: expected a YAML mapping"),
    (
        "missing sequence_type",
        {k: v for k, v in GOOD.items() if k != "sequence_type"},
        r"toy\.yaml is invalid: 'sequence_type' is a required property",
    ),
    (
        "unknown sequence type",
        {**GOOD, "sequence_type": "peptide"},
        r"toy\.yaml is invalid: key 'sequence_type': 'peptide' is not one of",
    ),
    (
        "gopher URL",
        {**GOOD, "sources": [{"name": "a", "kind": "url", "url": "gopher://x/a.fa", "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.url'",
    ),
    (
        "file:// as a remote source",
        {
            **GOOD,
            "sources": [{"name": "a", "kind": "url", "url": "file:///etc/passwd", "label": "a"}],
        },
        r"toy\.yaml is invalid: key 'sources\[0\]\.url': 'file:///etc/passwd' does not match",
    ),
    (
        "member outside the archive",
        {
            **GOOD,
            "sources": [
                {
                    "name": "a",
                    "kind": "local",
                    "path": "a.tar",
                    "member": "../../etc/passwd",
                    "label": "a",
                }
            ],
        },
        r"toy\.yaml: key 'sources\[0\]\.member' \('\.\./\.\./etc/passwd'\) must be a path inside",
    ),
    (
        "absolute member",
        {
            **GOOD,
            "sources": [
                {
                    "name": "a",
                    "kind": "local",
                    "path": "a.tar",
                    "member": "/etc/passwd",
                    "label": "a",
                }
            ],
        },
        r"toy\.yaml: key 'sources\[0\]\.member'",
    ),
    (
        "unbalanced header regex",
        {**GOOD, "labels": {"from": "header", "regex": r"class=(?P<label>\w+"}},
        r"toy\.yaml: key 'labels\.regex' \('class=\(\?P<label>\\w\+'\) is not a valid regular "
        r"expression: missing \), unterminated subpattern at position 6",
    ),
    (
        "regex without a label group",
        {**GOOD, "labels": {"from": "header", "regex": r"class=(\w+)"}},
        r"toy\.yaml: key 'labels\.regex' \('class=\(\\w\+\)'\) has no named group 'label'",
    ),
    (
        "repeated source names",
        {**GOOD, "sources": [GOOD["sources"][0]] * 2},
        r"toy\.yaml: key 'sources' needs unique source names, repeated: \['pos'\]",
    ),
    (
        "labels from source without a label",
        {**GOOD, "sources": [{"name": "a", "kind": "local", "path": "a.fa"}]},
        r"toy\.yaml: key 'sources\[0\]\.label' is required because labels\.from is 'source'",
    ),
    (
        "header false without columns",
        {
            **table_source(),
            "sources": [{"name": "s", "kind": "local", "path": "s.csv", "header": False}],
        },
        r"toy\.yaml: key 'sources\[0\]\.columns' is required when header is false",
    ),
    (
        "zenodo without a file",
        {**GOOD, "sources": [{"name": "z", "kind": "zenodo", "record": 1, "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]': 'file' is a required property",
    ),
    (
        "misspelt source key",
        {**GOOD, "sources": [{"name": "a", "kind": "local", "path": "a.fa", "lable": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.lable': unknown key; did you mean 'label'\?",
    ),
    (
        "unknown labels.from",
        {**GOOD, "labels": {"from": "filename"}},
        r"toy\.yaml is invalid: key 'labels\.from': 'filename' is not one of",
    ),
    (
        "accession with a space",
        {**GOOD, "sources": [{"name": "e", "kind": "ena", "accessions": ["AB 123"], "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.accessions\[0\]'",
    ),
    (
        "dataset file not UTF-8",
        b"description: caf\xe9\n",
        r"toy\.yaml: not a text file \(invalid continuation byte, byte 16\)",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"),
    [case[1:] for case in DATASET_FILE_CASES],
    ids=[case[0] for case in DATASET_FILE_CASES],
)
def test_bad_dataset_file_names_file_and_key(tmp_path, content, message):
    path = tmp_path / "toy.yaml"
    if isinstance(content, dict):
        write_yaml(path, content)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as error:
        load_dataset(path)
    assert_matches(str(error.value), message)


# --- the run config ------------------------------------------------------------------


def search(family: str, parameter: str, spec: dict) -> dict:
    return {"baselines": {"search_spaces": {family: {parameter: spec}}}}


RUN_CONFIG_CASES = [
    ("seed is text", {"seed": "many"}, r"key 'seed': 'many' is not of type 'integer'"),
    ("misspelt top-level key", {"seeds": 1}, r"key 'seeds': unknown key; did you mean 'seed'\?"),
    (
        "misspelt nested key",
        {"cnn": {"tunner": "random"}},
        r"key 'cnn\.tunner': unknown key; did you mean 'tuner'\?",
    ),
    ("no datasets", {"datasets": []}, r"key 'datasets': \[\] should be non-empty"),
    (
        "fractions above 1",
        {"split": {"fractions": {"train": 0.8}}},
        r"key 'split\.fractions' must sum to 1, got train 0\.8 \+ tune 0\.15 \+ test 0\.15 = 1\.1",
    ),
    (
        "fractions below 1",
        {"split": {"fractions": {"train": 0.6}}},
        r"key 'split\.fractions' must sum to 1, got .* = 0\.9",
    ),
    (
        "a zero fraction",
        {"split": {"fractions": {"test": 0}}},
        r"key 'split\.fractions\.test': 0 is less than or equal to the minimum of 0",
    ),
    *[
        (
            f"inverted {name} range",
            {"cnn": {"search_space": {name: [high, low]}}},
            rf"key 'cnn\.search_space\.{name}' is a range \[low, high\], got \[{high:g}, {low:g}\]",
        )
        for name, low, high in (
            ("dropout", 0.1, 0.5),
            ("learning_rate", 0.0001, 0.01),
            ("l2", 1e-6, 1e-3),
        )
    ],
    *[
        (
            f"{first} above {later}",
            {"explore": {first: value_first, later: value_later}},
            rf"key 'explore\.{first}' \({value_first:g}\) must not exceed explore\.{later}",
        )
        for first, later, value_first, value_later in (
            ("auroc_warn", "auroc_fail", 0.8, 0.7),
            ("cramers_v_warn", "cramers_v_fail", 0.95, 0.9),
            ("position_v_warn", "position_v_fail", 0.6, 0.5),
            ("duplicate_fraction_warn", "duplicate_fraction_fail", 0.1, 0.05),
            ("balance_fail", "balance_warn", 0.3, 0.25),
        )
    ],
    (
        "unknown logistic-regression penalty",
        search("logistic_regression", "penalty", {"type": "categorical", "choices": ["l2", "l3"]}),
        r"key 'baselines\.search_spaces\.logistic_regression\.penalty\.choices\[1\]': 'l3' is not "
        r"one of \['l1', 'l2', 'elasticnet'\]",
    ),
    (
        "unknown naive Bayes variant",
        search("naive_bayes", "variant", {"type": "categorical", "choices": ["bernoulli"]}),
        r"key 'baselines\.search_spaces\.naive_bayes\.variant\.choices\[0\]'",
    ),
    (
        "unknown kNN weights",
        search("knn", "weights", {"type": "categorical", "choices": ["inverse"]}),
        r"key 'baselines\.search_spaces\.knn\.weights\.choices\[0\]'",
    ),
    (
        "inverted forest range",
        search("random_forest", "n_estimators", {"type": "int", "low": 300, "high": 50}),
        r"key 'baselines\.search_spaces\.random_forest\.n_estimators' has low \(300\) above high",
    ),
    (
        "log range from zero",
        search("rbf_svm", "gamma", {"type": "float", "low": 0.0, "high": 1.0, "log": True}),
        r"key 'baselines\.search_spaces\.rbf_svm\.gamma' is log-scaled and needs low > 0",
    ),
    (
        "identity bins decreasing",
        {"evaluate": {"identity_bins": [0.0, 0.5, 0.3, 1.0]}},
        r"key 'evaluate\.identity_bins' holds bin edges, which must increase",
    ),
    (
        "length bins repeated",
        {"evaluate": {"length_bins": [0, 20, 20, 100]}},
        r"key 'evaluate\.length_bins' holds bin edges, which must increase",
    ),
    (
        "trial subsample above its threshold",
        {"budget": {"trial_subsample": {"above_sequences": 1000, "sequences": 1500}}},
        r"key 'budget\.trial_subsample\.sequences' \(1,500\) must not exceed "
        r"budget\.trial_subsample\.above_sequences \(1,000\)",
    ),
    ("unknown tuner", {"cnn": {"tuner": "grid"}}, r"key 'cnn\.tuner': 'grid' is not one of"),
    (
        "unknown on_invalid",
        {"curate": {"on_invalid": "skip"}},
        r"key 'curate\.on_invalid': 'skip' is not one of \['error', 'drop'\]",
    ),
    (
        "file:// endpoint",
        {"fetch": {"endpoints": {"zenodo": "file:///srv/zenodo"}}},
        r"key 'fetch\.endpoints\.zenodo': 'file:///srv/zenodo' does not match",
    ),
    (
        "empty ledger folder",
        {"evaluate": {"ledger_dir": ""}},
        r"key 'evaluate\.ledger_dir': '' should be non-empty",
    ),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [case[1:] for case in RUN_CONFIG_CASES],
    ids=[case[0] for case in RUN_CONFIG_CASES],
)
def test_bad_run_config_names_file_and_key(changes, message):
    with pytest.raises(InputError) as error:
        validate_run_config({"datasets": ["toy"], **changes})
    assert str(error.value).startswith("config/config.yaml")
    assert_matches(str(error.value), message)


def test_config_that_is_not_a_mapping():
    with pytest.raises(InputError, match=r"config/config\.yaml: expected a YAML mapping"):
        validate_run_config(["amp"])


def test_every_cross_key_problem_is_listed_at_once():
    with pytest.raises(InputError) as error:
        validate_run_config(
            {
                "datasets": ["toy"],
                "split": {"fractions": {"train": 0.9}},
                "explore": {"auroc_warn": 0.9},
            }
        )
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and "split.fractions" in lines[0] and "auroc_warn" in lines[1]


def test_a_bad_key_is_blamed_on_the_config_file_that_set_it(tmp_path):
    main = write_yaml(tmp_path / "config/config.yaml", {"datasets": ["toy"], "seed": 1})
    extra = write_yaml(tmp_path / "extra.yaml", {"cnn": {"tunner": "random"}})
    layers = config_layers([str(main)], [extra], {})
    config = {"datasets": ["toy"], "seed": 1, "cnn": {"tunner": "random"}}
    with pytest.raises(InputError, match=rf"^{extra} is invalid: key 'cnn\.tunner'"):
        validate_run_config(config, layers=layers)
    fractions = write_yaml(tmp_path / "fractions.yaml", {"split": {"fractions": {"test": 0.3}}})
    layers = config_layers([str(main)], [fractions], {"seed": -1})
    with pytest.raises(InputError, match=r"^--config on the command line is invalid: key 'seed'"):
        validate_run_config({"datasets": ["toy"], "seed": -1}, layers=layers)
    with pytest.raises(InputError, match=rf"^{fractions}: key 'split\.fractions' must sum"):
        validate_run_config(
            {"datasets": ["toy"], "split": {"fractions": {"test": 0.3}}}, layers=layers
        )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "datasets:\n  - amp\nseed: [1\n",
            r"line 4, column 1: .*flow sequence that starts on "
            r"line 3, column 7",
        ),
        ('datasets:\n  - "amp\n', r"line 3, column 1: .*quoted scalar that starts on line 2"),
    ],
    ids=["unclosed bracket", "unclosed quote"],
)
def test_yaml_syntax_error_in_the_config_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        check_yaml_syntax([path])
    assert_matches(str(error.value), rf"^{path}, {where}")


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    write_yaml(tmp_path / "toy.yaml", GOOD)
    config = validate_run_config({"datasets": ["toy", "tyo"], "datasets_dir": str(tmp_path)})
    with pytest.raises(InputError, match=r"'datasets\[1\]': unknown dataset 'tyo'.*toy"):
        load_datasets(config)


def test_make_run_checks_the_yaml_syntax_first(tmp_path, capsys):
    """`make run` calls `python -m deeprules.config_checks config/config.yaml` before
    Snakemake, whose own message for a broken config file names neither file nor line."""
    from deeprules.config_checks import main

    path = tmp_path / "config.yaml"
    path.write_text("datasets:\n  - amp\n")
    assert main([str(path)]) == 0
    path.write_text("datasets:\n  - amp\n seed: 1\n")
    assert main([str(path)]) == 1
    assert_matches(capsys.readouterr().err, rf"^deeprules: {path}, line 3, column 2: not valid")
