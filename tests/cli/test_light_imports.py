"""What importing costs: the package, the CLI and the plots load no torch or matplotlib until they are used."""

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "transformers", "matplotlib", "lm_eval_it.api", "lm_eval_it.run.runner")


def loaded_after(code: str) -> list[str]:
    """The heavy modules loaded after running ``code`` in a fresh interpreter."""
    probe = f"{textwrap.dedent(code)}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_importing_the_package_loads_neither_torch_nor_the_api():
    assert loaded_after("import lm_eval_it; assert lm_eval_it.__version__") == []


def test_evaluate_and_evalresult_come_from_the_api_on_first_use():
    code = """
        import lm_eval_it, lm_eval_it.api as api
        assert lm_eval_it.evaluate is api.evaluate and lm_eval_it.EvalResult is api.EvalResult
        assert {"evaluate", "EvalResult", "__version__"} <= set(dir(lm_eval_it))
        try:
            lm_eval_it.no_such_name
        except AttributeError as e:
            assert str(e) == "module 'lm_eval_it' has no attribute 'no_such_name'"
        else:
            raise AssertionError("no AttributeError")
    """
    assert "lm_eval_it.api" in loaded_after(code)


def test_help_and_a_config_error_load_no_torch():
    code = """
        import contextlib, io
        from lm_eval_it.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["run", "--help"])
            except SystemExit as e:
                assert e.code == 0
        with contextlib.redirect_stderr(io.StringIO()) as err:
            assert main(["run", "--model", "m", "--data", "pydoc_topics", "eval.window=1"]) == 2
        assert err.getvalue().startswith("error: ")
    """
    assert loaded_after(code) == []


def test_plots_import_without_matplotlib_and_load_it_to_draw():
    assert loaded_after("import lm_eval_it.report.plots") == []
    code = """
        from lm_eval_it.report import plots
        table = {"dataset": "d", "baseline": "a",
                 "rows": [{"model": "a", "bits_per_byte": 1.0, "bits_per_byte_ci": [0.9, 1.1], "delta": None}]}
        assert plots.comparison_plot(table).startswith(b"\\x89PNG")
        assert plots.plt.get_backend().lower() == "agg"
    """
    assert loaded_after(code) == ["matplotlib"]
