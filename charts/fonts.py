"""The CJK font every chart is drawn with: Noto Sans CJK SC from the `mplfonts` wheel.

Only the font file is used, registered with matplotlib's font manager in this process: not
`mplfonts.use_font` or its command, which copy files into matplotlib's own folders. Text falls
back to DejaVu Sans (matplotlib's own) for Latin glyphs the CJK font lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.typing import RcKeyType
from mplfonts.conf import FONT_DIR

CJK_FONT_PATH = Path(FONT_DIR) / "NotoSansCJKsc-Regular.otf"
CJK_FAMILY = "Noto Sans CJK SC"

font_manager.fontManager.addfont(str(CJK_FONT_PATH))

# matplotlib settings of every chart (applied around each drawing, never globally).
RC: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": [CJK_FAMILY, "DejaVu Sans"],
    "axes.unicode_minus": False,  # the CJK font has no U+2212; a hyphen reads the same
}
