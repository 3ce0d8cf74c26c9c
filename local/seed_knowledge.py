"""Demo knowledge base: published answers for the seeded service items and policies, in the words
a window officer would use. Idempotent: an article already there is left as it is.

Article ids are derived from a readable slug (`article_id("yb301-how")`), so the labelled search
questions in bench/data/kb_questions.jsonl can name them.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from chalicelib.domain.knowledge import ArticleContent, ItemLink, PolicyLink

_NAMESPACE = uuid.UUID("9d0f3c2a-4b1e-4e8a-8f7d-2c6b5a4e3d21")

# slug, department, question, answer, tags, item codes, policy (id, version) links
ARTICLES: tuple[tuple[str, str, str, str, tuple, tuple, tuple], ...] = (
    (
        "sc103-what",
        "dept-scjgj",
        "仅销售预包装食品备案是什么？哪些情况需要办理？",
        "只销售预包装食品（如瓶装饮料、袋装零食、盒装牛奶等已经定型包装的食品）的经营者，"
        "不需要办理食品经营许可证，改为向区市场监管局办理“仅销售预包装食品备案”。"
        "便利店、超市、网店等在开业前或开始销售前完成备案即可。",
        ("食品", "预包装食品", "备案"),
        ("QP-SC-103",),
        (),
    ),
    (
        "sc103-materials",
        "dept-scjgj",
        "办理仅销售预包装食品备案需要准备哪些材料？",
        "需要：营业执照（可调用电子证照，无需上传）、经营场所使用证明、食品安全管理制度"
        "和负责人身份证明。在“一网通办”或随申办搜索“仅销售预包装食品备案”在线提交，"
        "系统会根据企业档案自动预填大部分信息。",
        ("食品", "材料", "备案"),
        ("QP-SC-103",),
        (),
    ),
    (
        "sc103-time",
        "dept-scjgj",
        "预包装食品备案多久能办好？需要去窗口吗？",
        "仅销售预包装食品备案是即办件，材料齐全的当场办结，不收费。全程可以网上办理，"
        "不需要到窗口；如需帮助，可预约区政务服务中心的视频帮办。",
        ("食品", "时限", "网上办理"),
        ("QP-SC-103",),
        (),
    ),
    (
        "sc105-address",
        "dept-scjgj",
        "食品经营许可证上的经营场所变了，怎么办理变更？",
        "经营场所（地址）发生变化的，应当办理食品经营许可证变更。在“一网通办”搜索"
        "“食品经营许可证变更（经营场所）”，上传新场所的平面图和使用证明，"
        "区市场监管局审核后换发新证。",
        ("食品经营", "许可证", "变更", "地址"),
        ("QP-SC-105",),
        (),
    ),
    (
        "sc105-time",
        "dept-scjgj",
        "食品经营许可证变更经营场所要多长时间？会现场核查吗？",
        "法定时限20个工作日，青浦区承诺10个工作日内办结。变更经营场所一般需要现场核查，"
        "承办人会提前电话预约核查时间。材料不齐的会一次性告知需要补正的内容。",
        ("食品经营", "时限", "现场核查"),
        ("QP-SC-105",),
        (),
    ),
    (
        "rs201-register",
        "dept-rsj",
        "新成立的公司怎么办理单位就业参保登记？",
        "新设立的单位在取得营业执照后，通过“一网通办”法人服务办理“单位就业参保登记”，"
        "填报单位基本信息和经办人信息即可，统一社会信用代码等信息会自动带出。"
        "登记后即可为职工办理招用工备案和社会保险缴费。",
        ("社保", "参保", "企业", "就业"),
        ("QP-RS-201",),
        (),
    ),
    (
        "rs201-deadline",
        "dept-rsj",
        "单位招了新员工，多久内要办理参保登记？",
        "单位应当自用工之日起30日内为新招用的职工办理就业登记和社会保险登记。"
        "逾期未办的，可能影响职工的社保待遇，请尽早在“一网通办”办理。",
        ("社保", "参保", "员工", "时限"),
        ("QP-RS-201",),
        (),
    ),
    (
        "rs202-who",
        "dept-rsj",
        "灵活就业人员社会保险费补贴谁可以申请？",
        "本区户籍、处于就业困难状态并以灵活方式就业（如个体经营、非全日制、临时性工作）"
        "且按规定缴纳社会保险费的人员，可以申请灵活就业人员社会保险费补贴。",
        ("灵活就业", "社保", "补贴"),
        ("QP-RS-202",),
        (),
    ),
    (
        "rs202-amount",
        "dept-rsj",
        "灵活就业社保补贴每月补多少钱？能补多久？",
        "补贴标准按当年本市规定的社会保险费补贴额度执行，按月发放到本人社保卡银行账户，"
        "补贴期限一般不超过3年，距法定退休年龄不足5年的可延长至退休。",
        ("灵活就业", "补贴", "金额"),
        ("QP-RS-202",),
        (),
    ),
    (
        "yb301-how",
        "dept-ybj",
        "跨省异地就医备案怎么在网上办？",
        "打开随申办或国家医保服务平台，搜索“跨省异地就医备案”，选择备案类型和就医地，"
        "填写联系方式后提交，一般即时办结。备案成功后在就医地的定点医院可以直接刷卡结算。",
        ("医保", "异地就医", "备案", "网上办理"),
        ("QP-YB-301",),
        (),
    ),
    (
        "yb301-types",
        "dept-ybj",
        "异地就医备案有哪几种？长期居住和临时外出有什么区别？",
        "分为异地长期居住（异地安置退休、异地长期居住、常驻异地工作）和临时外出就医"
        "（异地转诊、急诊抢救、其他临时外出）。长期居住需要提供居住证明或个人承诺，"
        "临时外出备案有效期一般为6个月。",
        ("医保", "异地就医", "类型"),
        ("QP-YB-301",),
        (),
    ),
    (
        "yb301-validity",
        "dept-ybj",
        "异地就医备案多久生效？备案后还能取消或变更吗？",
        "备案提交后即时生效。异地长期居住备案原则上半年内不能变更，半年后可以在网上"
        "申请变更或取消；临时外出备案到期自动失效，也可以随时取消。",
        ("医保", "异地就医", "变更"),
        ("QP-YB-301",),
        (),
    ),
    (
        "zw401-what",
        "dept-zwb",
        "新生儿出生“一件事”一次能办哪些事？",
        "新生儿出生“一件事”把出生医学证明、户口登记、社保卡申领、医保参保登记等事项"
        "合并办理，一张表单、一次提交，长三角示范区内跨省也可以办理。",
        ("出生", "一件事", "新生儿"),
        ("QP-ZW-401",),
        (),
    ),
    (
        "zw401-materials",
        "dept-zwb",
        "办理新生儿出生一件事需要什么材料？在哪里办？",
        "需要父母双方身份证、户口簿、结婚证和出生医学证明（医院已推送的无需提交）。"
        "可以在随申办搜索“出生一件事”网上办理，也可以到区政务服务中心或街镇社区事务受理中心办理。",
        ("出生", "材料", "户口"),
        ("QP-ZW-401",),
        (),
    ),
    (
        "zw401-hukou",
        "dept-zwb",
        "宝宝刚出生，怎么给孩子报户口？",
        "可以通过新生儿出生“一件事”一并申报户口，无需另跑派出所。出生后一个月内申报，"
        "父母一方为青浦区户籍的，随父或随母落户，办好后户口簿可邮寄到家。",
        ("出生", "户口", "新生儿"),
        ("QP-ZW-401",),
        (),
    ),
    (
        "rc501-who",
        "dept-rsj",
        "青浦区人才安居补贴谁可以申请？",
        "45周岁以下、具有青浦区户籍、在本区就业并符合人才认定条件的人员可以申请，"
        "近3年不能有严重失信记录。通过政策体检可以查看自己是否符合条件，符合的可“快申”，"
        "申请表已按档案预填。",
        ("人才", "住房", "补贴"),
        ("QP-RC-501",),
        (("qp-rencai-anju", 1),),
    ),
    (
        "rc501-amount",
        "dept-rsj",
        "人才安居补贴每月补多少？最长补多久？",
        "租房补贴每月最高2000元，按月发放，最长36个月。需要提供本区房屋租赁合同，"
        "已享受其他住房补贴的不能重复享受。",
        ("人才", "住房", "补贴", "金额"),
        ("QP-RC-501",),
        (("qp-rencai-anju", 1),),
    ),
    (
        "gxjs-reward",
        "dept-kjw",
        "首次认定为高新技术企业有什么奖励？需要自己申请吗？",
        "在青浦区注册并纳税、首次认定高新技术企业一年内的企业，可获得一次性奖励25万元。"
        "这项政策是“免申即享”：系统根据数据自动比对，符合条件的直接拨付，企业不需要申请。",
        ("高新技术企业", "奖励", "免申即享"),
        (),
        (("qp-gxjs-first", 1),),
    ),
    (
        "gxjs-when",
        "dept-kjw",
        "高新技术企业奖励什么时候到账？怎么知道我们公司有没有资格？",
        "认定结果公布后，系统自动匹配符合条件的企业并拨付到企业对公账户，到账后会收到消息。"
        "企业可以在随申办“政策体检”里查看是否符合条件，以及不符合的是哪一项。",
        ("高新技术企业", "到账", "政策体检"),
        (),
        (("qp-gxjs-first", 1),),
    ),
    (
        "wengang-who",
        "dept-rsj",
        "稳岗补贴哪些企业能拿到？",
        "在青浦区注册、成立满2年、参保职工10人以上、纳税信用等级为A或B级，"
        "且近年没有严重失信和重大违法记录的企业，可以获得稳定就业岗位补贴2万元。",
        ("稳就业", "补贴", "企业"),
        (),
        (("qp-wengang-2026", 1),),
    ),
    (
        "wengang-confirm",
        "dept-rsj",
        "收到稳岗补贴确认通知后要做什么？不确认会怎样？",
        "稳岗补贴是“确认兑现”：收到通知后在随申办确认领取即可拨付，不需要提交材料。"
        "逾期未确认的视为放弃，本年度不再拨付；如不需要也可以选择放弃。",
        ("稳就业", "补贴", "确认"),
        (),
        (("qp-wengang-2026", 1),),
    ),
    (
        "booking",
        "dept-zwb",
        "去政务服务中心办事可以提前预约吗？",
        "可以。在随申办搜索“青浦好办”预约，选择服务中心、事项和时段，可预约1至5个工作日内的号。"
        "预约后不能到场请提前2小时取消，多次爽约会暂停网上预约3个月。",
        ("预约", "政务服务中心"),
        (),
        (),
    ),
    (
        "video-help",
        "dept-zwb",
        "不会在手机上办理，可以找人帮忙吗？",
        "可以申请“视频帮办”，工作人员通过视频一步步指导您在手机上办理；"
        "老年人和残疾人可以预约“上门办”，工作人员上门帮您办理。",
        ("帮办", "老年人", "网上办理"),
        (),
        (),
    ),
    (
        "banbucheng",
        "dept-zwb",
        "事情办不成、被窗口拒绝了，可以向谁反映？",
        "可以到“办不成事”反映窗口，或通过随申办、12345热线反映。区政务服务中心会在1个工作日内"
        "联系您，简单问题5个工作日内解决，复杂问题15个工作日内答复。",
        ("办不成事", "投诉", "反映"),
        (),
        (),
    ),
    (
        "review",
        "dept-zwb",
        "办完事怎么评价？给了差评会有人联系我吗？",
        "每次办事后都可以在随申办或窗口评价器上评价（好差评）。实名差评会有专人回访，"
        "承办部门要在规定时限内整改，整改后您还可以追评一次。",
        ("好差评", "评价", "差评"),
        (),
        (),
    ),
    (
        "elicence",
        "dept-zwb",
        "电子证照可以代替纸质材料吗？",
        "可以。营业执照、身份证、户口簿等已入库的电子证照，在网上办事时由系统自动调用，"
        "无需再上传复印件；在窗口办事时也可以出示随申办亮证代替原件。",
        ("电子证照", "材料"),
        (),
        (),
    ),
    (
        "hours",
        "dept-zwb",
        "青浦区政务服务中心几点上班？周末能办事吗？",
        "区政务服务中心工作日9:00至17:00办公，法定节假日不办公，调休的周末上班日正常办公。"
        "部分事项提供周末延时服务，请以随申办公告为准。",
        ("政务服务中心", "办公时间"),
        (),
        (),
    ),
    (
        "checkup",
        "dept-zwb",
        "什么是政策体检？怎么查自己能享受哪些政策？",
        "政策体检根据您（或企业）的档案，逐条比对正在实施的惠企惠民政策，告诉您哪些符合、"
        "哪些不符合以及原因、哪些还缺少数据。在随申办“青浦好办”里点“政策体检”即可查看。",
        ("政策体检", "政策"),
        (),
        (),
    ),
    (
        "ybcard-lost",
        "dept-ybj",
        "社保卡丢了怎么补办？补办期间能看病吗？",
        "可以在随申办挂失并申请补换社会保障卡，也可以到街镇社区事务受理中心补办。"
        "补办期间可以使用医保电子凭证（医保码）就医结算。",
        ("医保", "社保卡", "补办"),
        (),
        (),
    ),
    (
        "shebao-transfer",
        "dept-rsj",
        "外地交的社保怎么转到青浦？",
        "在国家社会保险公共服务平台或随申办申请养老保险关系转移接续，由转入地经办机构"
        "向原参保地发起联系函，一般45个工作日内办结，不需要两地来回跑。",
        ("社保", "转移"),
        (),
        (),
    ),
    # Common questions the demo's items and policies do not cover (no seeded item fits them).
    (
        "canyin-license",
        "dept-scjgj",
        "开饭店、小吃店要办什么证？食品经营许可证怎么申请？",
        "开饭店、小吃店、奶茶店等现场制作和销售食品（餐饮服务）的，先办营业执照，"
        "再向区市场监管局申请食品经营许可证，取得许可证后才能开业。在“一网通办”搜索"
        "“食品经营许可”在线申请，准备经营场所平面图和使用证明、食品安全管理制度、"
        "从业人员健康证明等材料，审核时一般会现场核查。只卖预包装食品的不需要许可证，"
        "办理仅销售预包装食品备案即可。",
        ("餐饮", "食品经营", "许可证"),
        (),
        (),
    ),
    (
        "yyzz-setup",
        "dept-scjgj",
        "开公司或者开个体店，营业执照怎么办？",
        "在“一网通办”的“企业开办”专栏在线办理设立登记：公司填报名称、住所、股东和经营范围，"
        "个体工商户填报经营者、经营场所和经营范围，不收费。材料齐全的可以同时领取电子营业执照、"
        "刻制印章、申领发票和办理单位参保登记，也可以到区政务服务中心企业开办窗口办理。",
        ("营业执照", "设立登记", "个体工商户"),
        (),
        (),
    ),
    (
        "shebao-record",
        "dept-rsj",
        "社保缴费记录怎么查？参保证明在哪里打印？",
        "在随申办搜索“社保查询”可以查看每个月的缴费记录和累计缴费年限。需要证明的，"
        "搜索“参保缴费证明”在线打印带电子印章的参保缴费情况证明，与窗口开具的效力相同；"
        "也可以在街镇社区事务受理中心的自助机上打印。",
        ("社保", "缴费记录", "证明"),
        (),
        (),
    ),
)


def article_id(slug: str) -> str:
    return uuid.uuid5(_NAMESPACE, slug).hex


def contents() -> list[tuple[str, ArticleContent]]:
    return [
        (
            article_id(slug),
            ArticleContent(
                question=question,
                answer=answer,
                department_id=department,
                tags=tuple(tags),
                item_links=tuple(ItemLink(code) for code in items),
                policy_links=tuple(PolicyLink(p, v) for p, v in policies),
            ),
        )
        for slug, department, question, answer, tags, items, policies in ARTICLES
    ]


def seed_knowledge(container: Any) -> int:
    """Write the demo articles as published (reviewed by the district office); answers how many
    were written. Call after seed_applications (links pin the current guide versions)."""
    from chalicelib.domain import knowledge as domain
    from chalicelib.domain.identity import SYSTEM
    from chalicelib.service_layer.audit import record_change
    from chalicelib.service_layer.knowledge import KnowledgeDeps

    deps = KnowledgeDeps.from_container(container)
    store = container.knowledge_store
    now = container.clock.now()
    written = 0
    for identifier, content in contents():
        if store.get_article(identifier) is not None:
            continue
        items = tuple(
            ItemLink(link.code, item.version if (item := deps.items(link.code)) else None)
            for link in content.item_links
        )
        draft, _ = domain.new_article(
            identifier, replace(content, item_links=items), "u-admin", now
        )
        published = domain.publish_now(replace(draft, approved_by=SYSTEM.user_id), now)
        revision = domain.Revision(identifier, 1, 1, now, "u-admin", "seeded", published.state)
        store.save_article(published, revision, now, tokens=deps.tokens(published))
        record_change(
            container.audit_log,
            SYSTEM,
            "kb_article.seeded",
            "kb_article",
            identifier,
            None,
            {"state": published.state.value},
        )
        written += 1
    return written
