"""What reps and customers of a tile and bathroom business say in WeCom: the lines of
`synthetic.chats`, each labelled with what keyword capture should find in it.

Labels follow the default keyword dictionary of issue 11 (categories 报价, 合同, 付款, 定金, 发货,
安装 with their synonyms; negations such as 还没/没有/未; risk words 投诉, 退货, 质量问题, 太贵了):

- KEYWORD lines hold a category word as a whole token, not negated;
- NEGATED lines hold one only behind (or followed by) a negation: "还没报价", "合同还没签";
- RISK lines hold a risk word and no category word;
- TRAP lines hold a category word's characters across two tokens ("汇报价格": 汇报 + 价格), so a
  substring match would fire and a token match must not;
- SMALL_TALK lines hold neither (tests/synthetic/test_chats.py checks every such label).

"付款码在哪" is a KEYWORD line, not a trap: 付款 is a token of it and a customer asking for the
payment code is about to pay. Placeholders ({product}, {amount} …) are filled per conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LineKind(StrEnum):
    SMALL_TALK = "small_talk"
    KEYWORD = "keyword"
    NEGATED = "negated"
    RISK = "risk"
    TRAP = "trap"


@dataclass(frozen=True)
class Line:
    """A text as said, with what capture should make of it."""

    text: str
    kind: LineKind = LineKind.SMALL_TALK
    categories: tuple[str, ...] = ()  # captured (KEYWORD) or found but negated (NEGATED)
    risks: tuple[str, ...] = ()


def _keyword(text: str, *categories: str) -> Line:
    return Line(text, LineKind.KEYWORD, categories)


def _negated(text: str, *categories: str) -> Line:
    return Line(text, LineKind.NEGATED, categories)


def _risk(text: str, *risks: str) -> Line:
    return Line(text, LineKind.RISK, risks=risks)


def _trap(text: str) -> Line:
    return Line(text, LineKind.TRAP)


CATEGORIES = ("报价", "合同", "付款", "定金", "发货", "安装")
# The words of each category the lines rely on (the design's default dictionary).
CATEGORY_WORDS = {
    "报价": ("报价", "报价单", "已报价"),
    "合同": ("合同", "签合同"),
    "付款": ("付款", "打款", "转账", "预付款"),
    "定金": ("定金",),
    "发货": ("发货", "到货"),
    "安装": ("安装", "上门安装"),
}
RISK_WORDS = ("投诉", "退货", "质量问题", "太贵了")

TILES = ("仿古砖", "大理石瓷砖", "木纹砖", "抛釉砖", "岩板", "防滑地砖", "外墙砖", "通体大板")
BATHROOM_WARES = ("马桶", "智能坐便器", "花洒", "浴室柜", "淋浴房", "台下盆", "卫浴五金")
SIZES = ("600×1200", "800×800", "750×1500", "300×600", "900×1800")
TITLES = ("王总", "李姐", "张老板", "刘工", "陈经理", "周哥", "您", "黄总", "彭师傅")
RIVALS = ("佛山那家", "建材市场", "网上", "隔壁门店")
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "明天", "后天")
QUOTE_FILE_SUBJECTS = ("瓷砖", "卫浴", "工程", "门店", "样板间", "整装")
# Files that are not quotes: (name, extension).
OTHER_FILES = (
    ("产品手册", "pdf"),
    ("施工方案", "docx"),
    ("铺贴效果图", "pptx"),
    ("工地照片", "zip"),
    ("规格参数表", "xlsx"),
)

# The sentence the default trigger rule looks for (with a PDF attached) to move 意向 → 报价.
QUOTE_SENT = "已发送正式报价单，{title}您看一下，有问题随时找我"

REP = {
    LineKind.SMALL_TALK: (
        Line("{title}您好，我是湘瓷建材的小顾问，有需要随时找我"),
        Line("好的，收到"),
        Line("{product}这周有现货，颜色您定了吗"),
        Line("{size}的规格卖得最好，铺出来大气"),
        Line("展厅周末也开门，您{day}过来看样吗"),
        Line("工地地址发我一下，我让同事先去量一下尺寸"),
        Line("这款{product}是佛山产的，釉面比较耐磨"),
        Line("您家面积大概{area}平对吧"),
        Line("好的{title}，有消息我第一时间告诉您"),
        Line("[OK]"),
        Line("我刚到门店，马上给您拍几张实物图"),
        Line("下午三点在门店等您"),
        Line("这批{product}做活动，价格可以再优惠一点"),
        Line("您看中的那款{product}还剩{qty}箱"),
        Line("样品明天给您带过去"),
        Line("收到，我跟领导申请一下"),
    ),
    LineKind.KEYWORD: (
        _keyword("{title}，{product}的报价单我整理好了，稍后发您", "报价"),
        _keyword("已报价给您了，{product}按{price}元一片算", "报价"),
        _keyword("报价单里含运费和税点", "报价"),
        _keyword("合同我今天拟好，您看下条款", "合同"),
        _keyword("明天带合同过去找您签字", "合同"),
        _keyword("预付款到账后我们就安排备货", "付款"),
        _keyword("剩下的款验收完再转账就行", "付款"),
        _keyword("先交{deposit}万定金，我们就给您锁价", "定金"),
        _keyword("定金收到了，收据拍给您", "定金"),
        _keyword("仓库今天已经发货了，预计后天到货", "发货"),
        _keyword("{product}{day}发货，物流单号晚点发您", "发货"),
        _keyword("师傅{day}上门安装，您家里留个人", "安装"),
        _keyword("安装师傅是我们自己的，放心", "安装"),
        _keyword("合同签好了，定金转账到公司账户就行", "合同", "付款", "定金"),
    ),
    LineKind.NEGATED: (
        _negated("还没报价，等厂家把新价格表发过来", "报价"),
        _negated("这单还没发货，我再催一下仓库", "发货"),
        _negated("师傅还没上门安装，我帮您问问", "安装"),
    ),
    LineKind.TRAP: (
        _trap("我跟老板汇报价格的事，晚点回您"),
        _trap("这款砖符合同行业的最高标准"),
        _trap("满一定金额可以包邮"),
        _trap("我联合同事一起给您出个方案"),
        _trap("这家平安装饰公司是我们的老客户"),
    ),
}

CUSTOMER = {
    LineKind.SMALL_TALK: (
        Line("在吗？"),
        Line("好的，谢谢"),
        Line("{product}有{size}的吗"),
        Line("颜色想要浅一点的"),
        Line("我跟家里人商量一下"),
        Line("你们门店在哪里？"),
        Line("这款{product}防滑吗"),
        Line("价格能再便宜点吗"),
        Line("图片收到了，看着还不错"),
        Line("我{day}下午有空"),
        Line("工地那边还在做水电"),
        Line("这个是哪个牌子的"),
        Line("[强]"),
        Line("好的，到时候联系"),
        Line("家里{area}平，大概要多少箱"),
        Line("有没有实景图"),
    ),
    LineKind.KEYWORD: (
        _keyword("你们{product}怎么报价的？发个报价单给我看看", "报价"),
        _keyword("能先给个报价吗，我们{area}平左右", "报价"),
        _keyword("合同盖好章了，快递寄给你们", "合同"),
        _keyword("合同里的交货期写清楚一点", "合同"),
        _keyword("款已经转账过去了，你查收一下", "付款"),
        _keyword("财务下午打款，你留意一下", "付款"),
        _keyword("付款方式可以分两期吗", "付款"),
        _keyword("付款码在哪，我扫一下", "付款"),
        _keyword("定金已经交了，收据给我一份", "定金"),
        _keyword("{product}什么时候能到货？工地等着用", "发货"),
        _keyword("东西今天能发货吗", "发货"),
        _keyword("你们包安装吗？", "安装"),
        _keyword("马桶安装好了，冲水挺顺的", "安装"),
    ),
    LineKind.NEGATED: (
        _negated("你们还没报价呢，我这边等着比价", "报价"),
        _negated("合同还没签，下周再说", "合同"),
        _negated("还没付款，财务在走流程", "付款"),
        _negated("定金还没交，等我老婆回来再说", "定金"),
        _negated("没有报价单，我怎么跟老板说", "报价"),
    ),
    LineKind.RISK: (
        _risk("上次那批砖有质量问题，色差很明显", "质量问题"),
        _risk("太贵了，{rival}便宜好多", "太贵了"),
        _risk("再这样我要投诉了", "投诉"),
        _risk("这批货我要退货", "退货"),
        _risk("釉面开裂，我已经投诉到你们总部了", "投诉"),
    ),
    LineKind.TRAP: (
        _trap("我先跟领导汇报价格，再回你"),
        _trap("满一定金额能送踢脚线吗"),
        _trap("批发货架上那款是什么砖"),
        _trap("我联合同事一起过来看样"),
    ),
}

# Mixed messages (a photo with a caption): the caption lines.
MIXED_CAPTIONS = (
    Line("这是现场照片，您看下"),
    Line("就要图上这种颜色的"),
    _keyword("按图上这个面积报价", "报价"),
    Line("卫生间是这个样子，帮我配一下"),
)
