"""The demo's brochure: a one-page product PDF for the brochure email template, written by hand
so the demo needs no PDF library."""

from __future__ import annotations

BROCHURE_FILENAME = "湘瓷2026产品手册.pdf"


def brochure_pdf() -> bytes:
    """A one-page product brochure, written as PDF by hand (Helvetica has no Chinese glyphs)."""
    lines = [
        "Hunan Xiangci Building Materials Co., Ltd.",
        "Product brochure 2026: tiles and bathroom ware",
        "Antique tiles - sintered stone - wood-look tiles - smart toilets",
        "Showroom: Changsha - Zhuzhou - Xiangtan",
    ]
    text = "BT /F1 16 Tf 72 760 Td 22 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)
