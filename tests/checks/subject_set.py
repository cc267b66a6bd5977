"""A labelled set of real-style subjects: for each campaign, strong and weak ones.

Written the way marketers write them (and the way they go wrong), in English
and Chinese, for seven campaigns of a tea shop. A strong subject carries the
offer, is concrete and short; a weak one is vague, generic, shouting, spammy,
over-long, deceptive or makes absolute claims. ``tests/checks/test_subject_model.py``
checks that the subject model ranks every strong subject of a campaign above
every weak one of the same campaign, pairwise, with accuracy of at least 0.9.
"""

from __future__ import annotations

# campaign: (headline + offer, strong subjects, weak subjects)
CAMPAIGNS: dict[str, tuple[str, list[str], list[str]]] = {
    "spring-en": (
        "Spring teas are here. 20% off every green tea until 15 April",
        [
            "Spring green teas: 20% off until 15 April",
            "20% off first-flush spring green tea",
            "Your spring green tea, 20% off this week",
            "New spring teas are here, 20% off",
        ],
        [
            "Hello",
            "Newsletter",
            "Don't miss out!!! BEST DEALS EVER",
            "Update from Lotus Tea House",
            "FREE!!! Act now, limited time only",
            "RE: your order",
            "We have some exciting news to share with all of our valued customers this season",
        ],
    ),
    "spring-zh": (
        "明前龙井上新。西湖龙井明前茶 9 折，限时一周",
        [
            "春茶上新：西湖龙井明前茶 9 折",
            "明前龙井上新，限时 9 折",
            "西湖龙井明前茶到了，本周 9 折",
        ],
        [
            "无标题",
            "通知",
            "你好",
            "最佳茶叶，全国第一，国家级品质！！！",
            "【重要通知】点击领取！！！免费！！！",
            "茶叶店月刊第十二期内容一览请查收谢谢您的支持与厚爱",
        ],
    ),
    "newyear-zh": (
        "元旦快乐。新年茶礼盒 8 折，1 月 3 日前下单包邮",
        [
            "元旦快乐！新年茶礼盒 8 折",
            "新年茶礼盒 8 折，元旦前下单包邮",
        ],
        [
            "问候",
            "最好的新年礼物，全网最低价！！！",
            "您有一封新邮件",
        ],
    ),
    "mooncake-en": (
        "Mid-Autumn mooncakes. Handmade lotus seed mooncakes, order by 20 September",
        [
            "Handmade lotus seed mooncakes for Mid-Autumn",
            "Mid-Autumn mooncakes: order by 20 September",
        ],
        [
            "Hi",
            "Our products",
            "BEST MOONCAKES IN THE WORLD!!!",
            "Fwd: mooncakes",
        ],
    ),
    "birthday-en": (
        "Happy birthday, Ann. A free tin of jasmine tea with your next order",
        [
            "Happy birthday! A tin of jasmine tea for you",
            "A birthday gift: jasmine tea with your next order",
        ],
        [
            "Message from Lotus Tea House",
            "Important information regarding your account status",
            "!!!",
        ],
    ),
    "flash-en": (
        "48-hour flash sale. 30% off oolong and pu-erh until Sunday midnight",
        [
            "48-hour flash sale: 30% off oolong and pu-erh",
            "30% off oolong & pu-erh until Sunday",
        ],
        [
            "Sale",
            "URGENT: LAST CHANCE!!! 🔥🔥🔥🔥",
            "Check this out",
            "Lowest price guaranteed, best ever deal",
        ],
    ),
    "newsletter-zh": (
        "十二月茶事。冬季养生茶推荐：红茶与普洱的冲泡方法",
        [
            "十二月茶事：红茶与普洱的冬季冲泡",
            "冬天喝什么茶？红茶与普洱冲泡指南",
        ],
        [
            "月刊",
            "Newsletter #12",
            "最强养生茶，根治百病",
        ],
    ),
}


def pairs() -> list[tuple[str, str, str, str]]:
    """(campaign, key text, strong, weak) for every strong/weak pair of a campaign."""
    return [
        (name, key, strong, weak)
        for name, (key, strongs, weaks) in CAMPAIGNS.items()
        for strong in strongs
        for weak in weaks
    ]


def size() -> int:
    """How many subjects the set holds."""
    return sum(len(strong) + len(weak) for _key, strong, weak in CAMPAIGNS.values())
