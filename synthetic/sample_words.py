"""What the sample company's people are called, sell and write: the words of `synthetic.sample`.

Placeholders in the follow-up texts ({region}, {product}, {amount} …) are filled per customer;
each text comes with the contact methods it is usually done by.
"""

from __future__ import annotations

from crm.vocab import ContactMethod, Source, Stage

PHONE, WECHAT, VISIT, EMAIL, WECOM_CHAT, VOICE = (
    ContactMethod.PHONE,
    ContactMethod.WECHAT,
    ContactMethod.VISIT,
    ContactMethod.EMAIL,
    ContactMethod.WECOM_CHAT,
    ContactMethod.VOICE,
)
SURNAMES = (
    "刘",
    "李",
    "王",
    "张",
    "陈",
    "彭",
    "谭",
    "邓",
    "曾",
    "罗",
    "周",
    "唐",
    "胡",
    "黄",
    "杨",
    "吴",
    "赵",
    "龙",
    "蒋",
    "贺",
    "易",
    "肖",
    "钟",
    "毛",
    "何",
    "朱",
    "向",
    "田",
    "欧阳",
    "段",
)
GIVEN_NAMES = (
    "建国",
    "志强",
    "美华",
    "海燕",
    "国庆",
    "红梅",
    "伟",
    "勇",
    "军",
    "丽",
    "芳",
    "建军",
    "永红",
    "卫国",
    "德明",
    "桂英",
    "秀兰",
    "春生",
    "金龙",
    "振华",
    "晓东",
    "文杰",
    "思远",
    "俊",
    "平",
    "湘华",
    "立新",
    "淑珍",
    "雪梅",
    "长青",
    "志明",
    "少华",
    "慧",
    "斌",
    "超",
    "玲",
    "霞",
    "明亮",
    "光辉",
    "凤英",
    "小兵",
    "新民",
    "跃进",
    "运华",
    "湘君",
    "亚男",
    "晓燕",
    "宏伟",
    "家豪",
    "敏",
)
COMPANY_WORDS = (
    "恒达",
    "鑫源",
    "宏图",
    "华誉",
    "湘江",
    "金盛",
    "盛世",
    "天元",
    "润丰",
    "博雅",
    "嘉和",
    "永安",
    "星城",
    "安居",
    "美家",
    "尚品",
    "锦绣",
    "荣昌",
    "中泰",
    "顺发",
    "广源",
    "华美",
    "富强",
    "瑞丰",
    "德信",
    "万嘉",
    "启航",
    "佳艺",
    "鼎盛",
    "和谐",
    "汇通",
    "福临门",
    "银河",
    "朝阳",
    "新宇",
)
PROJECT_COMPANY_KINDS = (
    "装饰工程有限公司",
    "建筑工程有限公司",
    "房地产开发有限公司",
    "物业管理有限公司",
    "酒店管理有限公司",
    "建设工程有限公司",
    "装饰设计有限公司",
    "置业有限公司",
)
RETAIL_COMPANY_KINDS = ("建材店", "装修队", "装饰设计工作室", "家装服务部")
TILES = ("仿古砖", "大理石瓷砖", "木纹砖", "抛釉砖", "岩板", "防滑地砖", "外墙砖")
BATHROOM_WARES = ("马桶", "智能坐便器", "花洒", "浴室柜", "淋浴房", "台下盆", "卫浴五金")
# What the customer is building, and the 项目类型 (custom field) it falls under.
RETAIL_PROJECTS = {
    "新房装修": "新房装修",
    "旧房翻新": "旧房改造",
    "自建房": "新房装修",
    "卫生间改造": "旧房改造",
    "厨房改造": "旧房改造",
}
PROJECT_PROJECTS = {
    "安置小区": "工程项目",
    "学校宿舍楼": "工程项目",
    "样板间": "工程项目",
    "酒店翻新": "商业空间",
    "写字楼公区": "商业空间",
    "商业综合体": "商业空间",
}
TAGS = (
    "价格敏感",
    "老客户",
    "急单",
    "需开票",
    "看重售后",
    "别墅",
    "自建房",
    "设计师介绍",
    "多次比价",
    "样板间",
    "大单",
    "回头客",
)
RIVALS = ("佛山某品牌", "另一家代理商", "建材市场散货", "网购")

Methods = tuple[ContactMethod, ...]

# (text, methods it is usually done by). Placeholders are filled per customer.
REGULAR_FOLLOW_UPS: dict[Stage, tuple[tuple[str, Methods], ...]] = {
    Stage.LEAD: (
        ("初次电话沟通，客户在{region}有{project}，需要{product}，约了下周到展厅看样", (PHONE,)),
        ("加了微信，发送了{product}的产品画册和价格区间，客户说先比较一下", (WECHAT, WECOM_CHAT)),
        ("电话没人接，发短信说明来意，过两天再联系", (PHONE,)),
        ("客户询问{product}的规格和价格，暂无明确预算，先保持联系", (WECHAT, WECOM_CHAT, PHONE)),
        ("发送了近期{region}的工地案例照片，客户有兴趣", (WECOM_CHAT, WECHAT)),
        ("邮件发送公司介绍和{product}产品手册", (EMAIL,)),
    ),
    Stage.INTEREST: (
        ("上门量房，面积约{area}平米，客户倾向{tile}", (VISIT,)),
        ("客户带家人到展厅看样，对{tile}比较满意，要求出铺贴效果图", (VISIT,)),
        ("寄送{tile}样品，客户确认了颜色和规格", (WECHAT, PHONE)),
        ("和设计师沟通铺贴方案，{tile}用量约{area}平米", (WECOM_CHAT, PHONE)),
        ("客户询问安装服务和售后，已说明质保政策", (PHONE, VOICE)),
        ("客户在比较两款{bath}，发了对比资料和样品照片", (WECOM_CHAT, WECHAT)),
    ),
    Stage.QUOTE: (
        ("客户反馈报价偏高，申请了九五折，等客户回复", (PHONE, WECOM_CHAT)),
        ("沟通合同条款：定金30%，到货后付清尾款", (VISIT, PHONE)),
        ("客户在对比{rival}的价格，强调了我们的售后和送货时效", (PHONE, VOICE)),
        ("报价单补充了{tile}的损耗和辅料，客户表示基本可以", (EMAIL, WECOM_CHAT)),
        ("催客户确认报价，客户说下周定下来", (PHONE, WECHAT)),
        ("带客户去看了{region}的已完工项目，客户很认可", (VISIT,)),
    ),
    Stage.WON: (
        ("安排{product}第一批送货到{region}工地，客户已签收", (PHONE, VISIT)),
        ("收到尾款{amount}万元，已开具发票", (WECOM_CHAT, PHONE)),
        ("回访安装效果，客户满意，答应介绍朋友过来", (VISIT, PHONE)),
        ("客户追加{product}订单，已报价补货", (WECOM_CHAT, WECHAT)),
        ("售后回访：有两片砖色差，已安排换货", (PHONE, VOICE)),
    ),
    Stage.LOST: (("回访了一次，客户暂时没有新的需求", (PHONE, WECHAT)),),
}

# Stage moves: the follow-up that caused it, and the cause kept in the stage history.
MOVE_FOLLOW_UPS: dict[tuple[Stage, Stage], tuple[tuple[str, str, Methods], ...]] = {
    (Stage.LEAD, Stage.INTEREST): (
        ("客户确认{project}需求，约好上门量房", "确认需求", (PHONE, WECHAT)),
        ("客户到店看样后明确意向，预算约{amount}万元", "到店看样确认意向", (VISIT,)),
    ),
    (Stage.INTEREST, Stage.QUOTE): (
        (
            "已发送正式报价单（PDF），{product}合计约{amount}万元",
            "已发送正式报价单",
            (EMAIL, WECOM_CHAT),
        ),
    ),
    (Stage.QUOTE, Stage.WON): (
        ("签订购销合同，收到定金{deposit}万元", "签订合同并收到定金", (VISIT,)),
        ("客户确认报价并签合同，定金{deposit}万元已付款", "确认报价并付定金", (WECOM_CHAT, PHONE)),
    ),
    (Stage.LEAD, Stage.LOST): (
        ("多次联系未回复，判定流失", "长期无回应", (PHONE,)),
        ("客户已在别处买好了，暂停跟进", "已在别处采购", (WECHAT,)),
    ),
    (Stage.INTEREST, Stage.LOST): (
        ("客户项目延期，暂不采购", "项目延期", (PHONE, WECHAT)),
        ("客户选择了{rival}，价格更低", "选择竞品", (PHONE,)),
    ),
    (Stage.QUOTE, Stage.LOST): (
        ("客户最终选择了{rival}，差价约{deposit}万元", "报价后选择竞品", (PHONE,)),
        ("报价后客户一直没有回复，电话也不接，判定流失", "报价后失联", (PHONE,)),
    ),
    (Stage.INTEREST, Stage.LEAD): (("客户装修计划推迟到年后，需求待定", "计划推迟", (PHONE,)),),
    (Stage.QUOTE, Stage.INTEREST): (
        ("客户要求调整产品方案，报价撤回重新选型", "报价撤回重新选型", (VISIT, WECOM_CHAT)),
    ),
    (Stage.WON, Stage.LOST): (("客户取消订单，已退还定金", "订单取消", (PHONE,)),),
    (Stage.LOST, Stage.LEAD): (
        ("老客户重新咨询，有新的{project}需求", "重新咨询", (WECHAT, PHONE)),
    ),
}

NEXT_PLANS = {
    Stage.LEAD: ("约客户到展厅看样", "再打一次电话了解预算", "发送工地案例"),
    Stage.INTEREST: ("出铺贴效果图", "约量房时间", "寄样品", "准备报价单"),
    Stage.QUOTE: ("电话确认报价", "约客户面谈合同", "申请特价后回复客户"),
    Stage.WON: ("安排送货", "回访安装效果", "催收尾款"),
    Stage.LOST: ("三个月后回访",),
}

FIRST_CONTACT_TEXTS = {
    Source.ONLINE_AD: "客户从线上广告留了电话，回电了解需求：{project}，关注{product}",
    Source.REFERRAL: "老客户介绍过来的，{project}，想看看{product}",
    Source.EXPO: "在建材展会上认识，客户对{product}感兴趣，留了联系方式",
    Source.COLD_CALL: "电话陌拜，客户近期有{project}，可以发资料看看",
    Source.WALK_IN: "客户到门店看{product}，{project}，登记了联系方式",
    Source.WECOM: "客户通过企业微信加好友，咨询{product}的价格",
    Source.PARTNER: "合作的设计公司推荐，{project}需要{product}",
    Source.BIDDING: "看到{region}{project}的招标公告，已报名并联系对方采购",
}

MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "157",
    "158",
    "159",
    "173",
    "176",
    "177",
    "180",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "199",
)
