"""Unit names for generated registries: real-looking departments, townships and institutions."""

from __future__ import annotations

import functools

from simnet.ident import PARTY

DEPARTMENTS = (
    "人民政府办公室",
    "发展和改革局",
    "教育局",
    "科学技术局",
    "工业和信息化局",
    "公安局",
    "民政局",
    "司法局",
    "财政局",
    "人力资源和社会保障局",
    "国土资源局",
    "环境保护局",
    "住房和城乡建设局",
    "交通运输局",
    "水务局",
    "农业局",
    "林业局",
    "商务局",
    "文化广电新闻出版局",
    "卫生和计划生育局",
    "审计局",
    "统计局",
    "安全生产监督管理局",
    "食品药品监督管理局",
    "工商行政管理局",
    "质量技术监督局",
    "粮食局",
    "档案局",
    "机构编制委员会办公室",
    "人民检察院",
    "人民法院",
    "纪律检查委员会",
    "组织部",
    "宣传部",
    "统一战线工作部",
    "政法委员会",
    "总工会",
    "共青团委员会",
    "妇女联合会",
    "科学技术协会",
    "残疾人联合会",
    "旅游局",
    "物价局",
    "信访局",
    "人民防空办公室",
    "地方税务局",
    "城市管理局",
    "城乡规划局",
    "畜牧水产局",
    "扶贫开发办公室",
    "民族宗教事务局",
    "外事侨务办公室",
    "体育局",
    "老龄工作委员会办公室",
    "应急管理办公室",
    "政务服务中心管理办公室",
)
TOWN_FIRST = "东西南北大小新石白高"
TOWN_SECOND = "庄营村河城店屯口集桥"
TOWN_PARTY = ("人民政府", "党委", "人大主席团", "纪律检查委员会", "财政所")
INSTITUTIONS = (
    "人民医院",
    "中医医院",
    "妇幼保健院",
    "疾病预防控制中心",
    "第一中学",
    "第二中学",
    "职业技术教育中心",
    "实验小学",
    "图书馆",
    "文化馆",
    "广播电视台",
    "农业技术推广中心",
    "气象服务中心",
    "公证处",
    "档案馆",
    "城市管理综合执法大队",
    "房产交易中心",
    "住房公积金管理中心",
    "社会保险事业管理局",
    "就业服务中心",
)
TOWN_INSTITUTIONS = (
    "中心小学",
    "卫生院",
    "中学",
    "幼儿园",
    "农业技术推广站",
    "文化站",
    "兽医站",
    "计划生育服务站",
)


def towns() -> list[str]:
    return [a + b for a in TOWN_FIRST for b in TOWN_SECOND]


@functools.cache
def _pool(prefix: str, kind: str) -> tuple[str, ...]:
    t = towns()
    if kind == PARTY:
        pool = [prefix + d for d in DEPARTMENTS]
        pool += [f"{prefix}{town}镇{p}" for p in TOWN_PARTY for town in t]
    else:
        pool = [prefix + d for d in INSTITUTIONS]
        pool += [f"{prefix}{town}镇{p}" for p in TOWN_INSTITUTIONS for town in t]
    return tuple(pool)


def unit_name(prefix: str, kind: str, index: int) -> str:
    """The ``index``-th unit name of ``kind`` under an office (``prefix`` like 保定市 or 唐县); unique."""
    pool = _pool(prefix, kind)
    if index < len(pool):
        return pool[index]
    return f"{prefix}第{index - len(pool) + 1}{'管理办公室' if kind == PARTY else '服务中心'}"
