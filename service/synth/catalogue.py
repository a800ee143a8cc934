"""Item catalogue, diagnoses and DRG groups of the synthetic feed (SPEC §3, §7).

``ITEMS`` maps an item code to its catalogue entry: ``code``, ``name``, ``category``,
``unit_price`` (yuan) and the optional restrictions ``gender`` (``"F"``/``"M"``) and
``min_age`` / ``max_age`` (inclusive bounds in years). ``claim.gender_restricted`` fires
when the patient's gender differs from ``gender``; ``claim.age_restricted`` when the age
is below ``min_age`` or above ``max_age``. ``CHRONIC_DIAGNOSES`` lists ICD-10 prefixes; a
diagnosis is chronic when it starts with one of them (every chronic code used here also
has the prefix as its first three characters). The rule set ships the same data; keep
both in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    code: str
    name: str
    category: str
    unit_price: float
    gender: str | None = None
    min_age: int | None = None
    max_age: int | None = None

    def allows(self, gender: str, age: int) -> bool:
        """True when a patient of this gender and age may receive the item."""
        if self.gender is not None and gender != self.gender:
            return False
        if self.min_age is not None and age < self.min_age:
            return False
        return self.max_age is None or age <= self.max_age


_ROWS: tuple[tuple, ...] = (
    # services (consultation, nursing)
    ("110200001", "普通门诊诊查费", "service", 10.0),
    ("110200002", "门诊诊查费(二级)", "service", 20.0),
    ("110200003", "门诊诊查费", "service", 25.0),
    ("110200004", "门诊诊查费(三级)", "service", 40.0),
    ("110900001", "住院诊查费", "service", 20.0),
    ("120100001", "一级护理", "service", 28.0),
    ("120100002", "二级护理", "service", 18.0),
    # beds
    ("111000001", "普通病房床位费(三人间)", "bed", 30.0),
    ("111000002", "普通病房床位费(双人间)", "bed", 50.0),
    ("111000003", "普通病房床位费(三级)", "bed", 80.0),
    ("111000004", "重症监护病房床位费", "bed", 220.0),
    # exams
    ("250101001", "血常规", "exam", 20.0),
    ("250102001", "尿常规", "exam", 10.0),
    ("250301001", "肝功能", "exam", 60.0),
    ("250302001", "肾功能", "exam", 45.0),
    ("250303001", "血脂四项", "exam", 40.0),
    ("250304001", "血糖测定", "exam", 8.0),
    ("250401001", "C反应蛋白", "exam", 30.0),
    ("250501001", "糖化血红蛋白", "exam", 70.0),
    ("220201001", "B超常规检查", "exam", 90.0),
    ("220302001", "心脏彩色多普勒超声", "exam", 200.0),
    ("210102001", "胸部X线摄影", "exam", 60.0),
    ("210301001", "CT平扫", "exam", 260.0),
    ("210401001", "磁共振平扫", "exam", 520.0),
    ("310701001", "常规心电图", "exam", 25.0),
    ("270800001", "电子胃镜检查", "exam", 350.0),
    ("250601001", "前列腺特异性抗原测定", "exam", 80.0, "M", 18, None),
    ("220203001", "产前超声检查", "exam", 150.0, "F", 12, 55),
    ("250602001", "人绒毛膜促性腺激素测定", "exam", 40.0, "F", 10, 60),
    ("220600001", "新生儿听力筛查", "exam", 60.0, None, None, 1),
    # treatments
    ("120400001", "静脉输液", "treatment", 12.0),
    ("120400002", "肌肉注射", "treatment", 5.0),
    ("311000001", "雾化吸入", "treatment", 15.0),
    ("310800001", "换药", "treatment", 25.0),
    ("340200001", "针刺", "treatment", 30.0),
    ("340300001", "推拿治疗", "treatment", 50.0),
    ("340100001", "运动疗法", "treatment", 40.0),
    ("340100002", "中频脉冲电治疗", "treatment", 20.0),
    ("331600001", "阑尾切除术", "treatment", 1200.0),
    ("331500001", "腹股沟疝修补术", "treatment", 1500.0),
    ("311300001", "持续有创血压监测", "treatment", 80.0),
    ("310300001", "氧气吸入(小时)", "treatment", 4.0),
    ("311500001", "心电监测(小时)", "treatment", 8.0),
    ("331900001", "剖宫产术", "treatment", 1800.0, "F", 12, 55),
    ("331900002", "阴道分娩接生", "treatment", 800.0, "F", 12, 55),
    ("310602001", "小儿推拿", "treatment", 45.0, None, None, 14),
    # consumables
    ("C00010001", "一次性输液器", "consumable", 3.0),
    ("C00010002", "医用纱布敷料", "consumable", 2.0),
    ("C00010003", "静脉留置针", "consumable", 18.0),
    ("C00010004", "一次性使用吻合器", "consumable", 780.0),
    ("C00020001", "血糖试纸", "consumable", 68.0),
    ("C00020002", "医用外科口罩", "consumable", 15.0),
    # drugs: outpatient / pharmacy
    ("XJ01DCC092A001", "头孢克洛缓释片", "drug", 29.5),
    ("XJ01CAA040A001", "阿莫西林胶囊", "drug", 12.8),
    ("XJ01MAL012A001", "左氧氟沙星片", "drug", 18.6, None, 18, None),
    ("XN02BEA003A001", "布洛芬缓释胶囊", "drug", 11.2),
    ("XA02BCA001A001", "奥美拉唑肠溶胶囊", "drug", 24.0),
    ("XM01AEA001A001", "洛索洛芬钠片", "drug", 22.0),
    ("XD08AGA002A001", "聚维酮碘溶液", "drug", 8.5),
    ("XA11GAA001A001", "维生素C片", "drug", 6.5),
    ("XA06AXA004A001", "开塞露", "drug", 5.0),
    ("XB03AAA001A001", "琥珀酸亚铁片", "drug", 15.0),
    ("XC08CAA001A001", "硝苯地平控释片", "drug", 33.6),
    ("XC09CAA003A001", "缬沙坦胶囊", "drug", 28.4),
    ("XA10BAA002A001", "盐酸二甲双胍片", "drug", 9.6),
    ("XC10AAA005A001", "阿托伐他汀钙片", "drug", 36.8),
    ("XR03AKA001A001", "沙美特罗替卡松吸入剂", "drug", 168.0),
    ("ZA04BAA002A001", "复方丹参滴丸", "drug", 26.5),
    ("ZA01AAA001A001", "中药饮片(剂)", "drug", 35.0),
    ("ZA03CAA003A001", "连花清瘟胶囊", "drug", 14.8),
    ("ZA01BAA006A001", "感冒灵颗粒", "drug", 16.8),
    ("ZA01CAA021A001", "板蓝根颗粒", "drug", 12.0),
    ("XR05XAA001B001", "小儿氨酚黄那敏颗粒", "drug", 9.8, None, None, 14),
    ("XR05CBA001B001", "小儿止咳糖浆", "drug", 15.5, None, None, 14),
    ("XG03DAA004B001", "黄体酮注射液", "drug", 45.0, "F", 12, 60),
    ("XG04CAA002A001", "盐酸坦索罗辛缓释胶囊", "drug", 58.0, "M", 18, None),
    # drugs: inpatient
    ("XJ01DDA063B001", "注射用头孢曲松钠", "drug", 26.0),
    ("XB05BBA001B001", "0.9%氯化钠注射液", "drug", 4.5),
    ("XB05BAA001B001", "葡萄糖注射液", "drug", 5.2),
    ("XA02BCA002B001", "注射用奥美拉唑钠", "drug", 38.0),
    ("XB01ABA005B001", "低分子肝素钙注射液", "drug", 65.0),
    ("XB05AAA001B001", "人血白蛋白", "drug", 398.0),
    ("XJ01DHA002B001", "注射用美罗培南", "drug", 180.0),
    ("XN01AXA010B001", "丙泊酚注射液", "drug", 95.0),
    ("XH02ABA004B001", "注射用甲泼尼龙琥珀酸钠", "drug", 42.0),
    ("XC01CAA024B001", "盐酸多巴胺注射液", "drug", 9.0),
    ("XJ01DDA012B001", "注射用头孢哌酮钠舒巴坦钠", "drug", 48.0),
    ("XJ01CRA005B001", "注射用哌拉西林钠他唑巴坦钠", "drug", 66.0),
    ("XR05CBA006B001", "盐酸氨溴索注射液", "drug", 12.0),
    ("XN06BXA011B001", "奥拉西坦注射液", "drug", 118.0),
    ("ZB01ACA003B001", "注射用血栓通", "drug", 86.0),
    ("XL03AXA006B001", "注射用胸腺法新", "drug", 158.0),
)


def _entry(row: tuple) -> CatalogueItem:
    code, name, category, price, *limits = row
    gender, min_age, max_age = (limits + [None, None, None])[:3]
    return CatalogueItem(code, name, category, price, gender, min_age, max_age)


ITEMS: dict[str, CatalogueItem] = {row[0]: _entry(row) for row in _ROWS}

CHRONIC_DIAGNOSES: tuple[str, ...] = (
    "I10", "I11", "I25", "I50", "E10", "E11", "E78", "J44", "J45", "N18", "G40", "F20",
)


def is_chronic(diagnosis: str) -> bool:
    return diagnosis.startswith(CHRONIC_DIAGNOSES)


def restricted_items() -> dict[str, CatalogueItem]:
    """The entries carrying a gender or age restriction (what the claim rules need)."""
    return {
        code: item
        for code, item in ITEMS.items()
        if item.gender is not None or item.min_age is not None or item.max_age is not None
    }


# Outpatient diagnoses per specialty: (code, weight). Chronic codes are added per patient.
OUTPATIENT_DX: dict[str, tuple[tuple[str, float], ...]] = {
    "internal": (("J06.9", 4), ("J20.9", 2), ("K29.7", 2), ("R51", 1), ("K59.0", 1),
                 ("R10.4", 1), ("M54.5", 1)),
    "surgery": (("K40.9", 1), ("S61.0", 2), ("M54.5", 2), ("N20.0", 1), ("L02.4", 1),
                ("K80.2", 1), ("S93.4", 1)),
    "pediatrics": (("J06.9", 4), ("J02.9", 2), ("A09", 1), ("R50.9", 2), ("J20.9", 1)),
    "obstetrics": (("Z34.9", 4), ("N76.0", 1), ("O21.0", 1), ("Z32.1", 1)),
    "tcm": (("M54.5", 2), ("R51", 1), ("K30", 1), ("G47.0", 2), ("J06.9", 1)),
    "rehab": (("M54.5", 2), ("M17.9", 2), ("I69.3", 2), ("M75.1", 1)),
    "other": (("H10.9", 2), ("L30.9", 2), ("H66.9", 1), ("J30.4", 2)),
    "icu": (("R57.9", 1),),
}

# Inpatient diagnoses per specialty: (code, weight, drg code, drg weight).
INPATIENT_DX: dict[str, tuple[tuple[str, float, str, float], ...]] = {
    "internal": (("J18.9", 3, "ES31", 0.92), ("I63.9", 2, "BR21", 1.45),
                 ("I21.9", 1, "FM19", 1.70), ("K29.7", 1, "GU15", 0.70),
                 ("E11.9", 1, "KS15", 0.85), ("J44.1", 2, "ER15", 1.05)),
    "surgery": (("K35.8", 2, "GB25", 1.20), ("K40.9", 2, "GD15", 1.05),
                ("K80.2", 1, "HC25", 1.35), ("S72.0", 1, "IC29", 1.80)),
    "pediatrics": (("J18.9", 3, "ES33", 0.75), ("A09", 1, "GZ15", 0.55),
                   ("J21.9", 1, "ES35", 0.70)),
    "obstetrics": (("O80", 3, "OB21", 0.62), ("O82", 2, "OC15", 1.00)),
    "tcm": (("M54.5", 2, "IU25", 0.80), ("I63.9", 1, "BR25", 1.30)),
    "rehab": (("I69.3", 2, "XS25", 1.10), ("M17.9", 1, "IU35", 0.85)),
    "icu": (("A41.9", 2, "AH19", 3.20), ("J96.0", 1, "EJ19", 2.60)),
    "other": (("H25.9", 2, "CB35", 0.80), ("J35.0", 1, "DD25", 0.75)),
}

CHRONIC_PATIENT_DX: tuple[tuple[str, float], ...] = (
    ("I10", 5), ("E11.9", 3), ("I25.1", 2), ("J44.9", 1), ("E78.5", 2), ("N18.3", 1),
)
