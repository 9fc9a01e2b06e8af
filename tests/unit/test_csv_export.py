"""CSV injection (issue 25): a cell a spreadsheet would run as a formula is written as text, in every CSV
the product writes; no module writes CSV another way."""

from __future__ import annotations

import csv
import io

from loyalty.csv_export import csv_text
from tests.support import ROOT


def test_formula_cells_get_an_apostrophe_and_the_rest_stay_as_they_are():
    text = csv_text(
        ["a", "b"], [['=HYPERLINK("http://x")', "+86 138"], ["-5", "@SUM(A1)"], ["\t=1", "张三"], [None, "ok"]]
    )
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b"],
        ['\'=HYPERLINK("http://x")', "'+86 138"],
        ["'-5", "'@SUM(A1)"],
        ["'\t=1", "张三"],
        ["", "ok"],
    ]


def test_no_module_but_csv_export_writes_csv():
    writers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "layers" / "loyalty" / "loyalty").rglob("*.py")
        if "csv.writer" in path.read_text() or "csv.DictWriter" in path.read_text()
    ]
    assert writers == ["layers/loyalty/loyalty/csv_export.py"]
