"""sieve.report writes the page sieve report writes: the same sections, pictures and numbers; only
the provenance (the call, the date, the timings) differs."""

import pytest

import sieve
from conftest import IMAGES, MODEL, cli_error, cli_ok

METHODS = ["gradient", "lrp.epsilon"]
LABELS = "Ankle boot,Pullover,Pullover,Trouser,Trouser,Shirt,Trouser"


def before_provenance(path):
    html = path.read_text(encoding="utf-8")
    return html[: html.index('<h2 id="provenance">')]


def test_report_matches_the_command_line(tmp_path, model):
    cli_page = tmp_path / "cli.html"
    args = ["report", MODEL, IMAGES, "--labels", LABELS, "--evaluate", "sparseness", "--out", cli_page]
    for m in METHODS:
        args += ["-m", m]
    cli_ok(*args)
    py_page = tmp_path / "python.html"
    sieve.report(model, [str(IMAGES)], METHODS, out=str(py_page), labels=LABELS, evaluate=["sparseness"])
    assert before_provenance(py_page) == before_provenance(cli_page)
    assert "sieve.report(" in py_page.read_text(encoding="utf-8")


def test_report_takes_labels_as_a_list(tmp_path, model):
    by_name, by_list = tmp_path / "names.html", tmp_path / "list.html"
    sieve.report(model, [str(IMAGES)], ["gradient"], out=str(by_name), labels=LABELS)
    sieve.report(model, [str(IMAGES)], ["gradient"], out=str(by_list), labels=[9, 2, 2, 1, 1, 6, 1])
    assert before_provenance(by_list) == before_provenance(by_name)


def test_report_compares_models(tmp_path, model):
    page = tmp_path / "models.html"
    sieve.report(model, [str(IMAGES)], ["gradient"], out=str(page), compare=[sieve.Model(str(MODEL))])
    assert 'id="models"' in page.read_text(encoding="utf-8")


def test_report_errors_are_the_command_lines(tmp_path, model):
    page = tmp_path / "r.txt"
    expected = cli_error("report", MODEL, IMAGES, "-m", "gradient", "--out", page)
    with pytest.raises(sieve.Error, match="the report is an .html file"):
        sieve.report(model, [str(IMAGES)], ["gradient"], out=str(page))
    assert "the report is an .html file" in expected
    with pytest.raises(sieve.Error, match="2 label"):
        sieve.report(model, [str(IMAGES)], ["gradient"], out=str(tmp_path / "r.html"), labels=[1, 2])
