"""Import bombs: files built to cost memory or CPU are refused before or while they are streamed,
with a clear message and a stable code, and no customer is written."""

from __future__ import annotations

import secrets
import tracemalloc
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from crm import imports
from crm.actors import Actor
from crm.imports import ImportTooLarge, import_customers
from models import Customer
from tests.factories import make_company, sign_in

SHEET = "xl/worksheets/sheet1.xml"
SHARED_STRINGS = "xl/sharedStrings.xml"
SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
# Far above what reading the few bytes of a refused file needs, far below what parsing any of
# these bombs would take (hundreds of MB to GB).
MEMORY_BOUND_BYTES = 64 * 1024 * 1024


def bomb(tmp_path: Path, part: str, chunks: Iterable[bytes]) -> Path:
    """A real workbook with one part replaced by `chunks`, deflated as it is written."""
    template = tmp_path / "template.xlsx"
    workbook = Workbook()
    workbook.active.append(["客户名称", "电话"])
    workbook.active.append(["佛山陶瓷厂", "13800138000"])
    workbook.save(template)
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if info.filename != part:
                target.writestr(info, source.read(info.filename), zipfile.ZIP_DEFLATED)
        with target.open(deflated(zipfile.ZipInfo(part)), "w", force_zip64=True) as handle:
            for chunk in chunks:
                handle.write(chunk)
    return path


def deflated(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def one_huge_shared_string(size: int, text: bytes = b"A") -> Iterator[bytes]:
    yield f'<sst xmlns="{SHEET_NS}" count="1" uniqueCount="1"><si><t>'.encode()
    piece = text * max(1, 1024 * 1024 // len(text))
    for _ in range(max(1, size // len(piece))):
        yield piece
    yield b"</t></si></sst>"


def sheet(rows: Iterable[str], dimension: str = "A1") -> Iterator[bytes]:
    yield f'<worksheet xmlns="{SHEET_NS}"><dimension ref="{dimension}"/><sheetData>'.encode()
    for row in rows:
        yield row.encode()
    yield b"</sheetData></worksheet>"


def text_cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def refusal(session, path: Path) -> tuple[ImportTooLarge, int]:
    """The refusal of importing `path`, and the most memory Python held meanwhile."""
    rep = make_company(session).reps[0][0]
    tracemalloc.start()
    try:
        with pytest.raises(ImportTooLarge) as caught:
            import_customers(session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    assert caught.value.code == "import_too_large"
    assert caught.value.field == "file"
    return caught.value, peak


def test_one_huge_shared_string_is_refused_before_the_workbook_is_parsed(session, tmp_path):
    path = bomb(tmp_path, SHARED_STRINGS, one_huge_shared_string(300 * 1024 * 1024))
    assert path.stat().st_size < 1024 * 1024  # the 613 KB kind, not a large upload

    error, peak = refusal(session, path)

    assert error.message.startswith("Excel 文件解压后过大")
    assert peak < MEMORY_BOUND_BYTES


def test_shared_strings_too_large_to_hold_are_refused_even_when_they_barely_compress(
    session, tmp_path, monkeypatch
):
    monkeypatch.setattr(imports, "MAX_SHARED_STRINGS_BYTES", 1024 * 1024)
    random_text = secrets.token_hex(1024 * 1024).encode()  # shrinks about 2 times
    path = bomb(tmp_path, SHARED_STRINGS, one_huge_shared_string(2 * 1024 * 1024, random_text))

    error, _ = refusal(session, path)

    assert error.message.startswith("Excel 文件解压后过大")


def test_a_sheet_of_millions_of_cells_squeezed_into_a_small_file_is_refused(session, tmp_path):
    # Cells need no reference ("A1"): 200 identical rows of 100 cells, written 1,000 times, are
    # 20 million cells in a file under 1 MB.
    rows = ("<row>" + "<c><v>1</v></c>" * 100 + "</row>") * 200
    path = bomb(tmp_path, SHEET, sheet([rows] * 1_000))
    assert path.stat().st_size < 1024 * 1024

    error, peak = refusal(session, path)

    assert error.message.startswith("Excel 文件解压后过大")
    assert peak < MEMORY_BOUND_BYTES


def test_the_parts_together_may_not_inflate_past_the_limit(session, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "MAX_UNCOMPRESSED_BYTES", 1024 * 1024)
    rows = (
        f'<row r="{n}">{text_cell(f"A{n}", secrets.token_hex(16))}</row>' for n in range(2, 20_000)
    )

    error, _ = refusal(session, bomb(tmp_path, SHEET, sheet(rows)))

    assert error.message.startswith("Excel 文件解压后过大")


def test_sparse_cells_far_to_the_right_stop_the_stream_at_the_cell_limit(session, tmp_path):
    header = f'<row r="1">{text_cell("A1", "客户名称")}</row>'
    rows = [header] + [
        f'<row r="{n}">{text_cell(f"A{n}", f"客户{n}")}<c r="XFD{n}"><v>1</v></c></row>'
        for n in range(2, 2_000)
    ]
    path = bomb(tmp_path, SHEET, sheet(rows, dimension="A1:XFD2000"))
    assert path.stat().st_size < 200 * 1024  # no zip trickery: the cells are really there

    error, peak = refusal(session, path)

    assert error.message.startswith("表格的单元格过多")
    assert peak < MEMORY_BOUND_BYTES


def test_a_sheet_that_states_a_huge_size_is_read_for_the_cells_it_has(session, tmp_path, clock):
    rep = make_company(session).reps[0][0]
    rows = [
        f'<row r="1">{text_cell("A1", "客户名称")}{text_cell("B1", "电话")}</row>',
        f'<row r="2">{text_cell("A2", "佛山陶瓷厂")}{text_cell("B2", "13800138000")}</row>',
    ]
    path = bomb(tmp_path, SHEET, sheet(rows, dimension="A1:XFD1048576"))

    result = import_customers(
        session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=clock()
    )

    assert (result.total_rows, result.created) == (1, 1)


def test_a_file_over_the_row_limit_is_refused_before_any_row_is_written(session, tmp_path):
    path = tmp_path / "big.csv"
    lines = ["客户名称,电话"] + [f"客户{n},{13_000_000_000 + n}" for n in range(50_001)]
    path.write_text("\r\n".join(lines), encoding="utf-8")

    error, _ = refusal(session, path)

    assert error.message == "单次最多导入 50000 行，请拆分文件"


def test_a_csv_line_of_millions_of_cells_is_refused_before_it_is_split(session, tmp_path):
    path = tmp_path / "commas.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "客户名称,电话\r\n".encode() + b"," * 10_000_000)

    error, peak = refusal(session, path)

    assert error.message == "CSV 文件中有一行超过 100 万个字符，请检查文件"
    assert peak < MEMORY_BOUND_BYTES


def test_a_bomb_is_refused_at_upload_with_the_error_envelope(client, session, fake_wecom, tmp_path):
    path = bomb(tmp_path, SHARED_STRINGS, one_huge_shared_string(100 * 1024 * 1024))
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = client.post(
        "/api/v1/imports",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (path.open("rb"), "客户.xlsx")},
    )

    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "import_too_large"
    assert response.json["error"]["field"] == "file"
