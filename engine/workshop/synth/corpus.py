"""Real sentences to letter: LibreOffice help (ja/ko/zh), fortunes (en, zh), plus short manga-style phrases.

Each corpus is parsed once, lazily, from a bounded, fixed subset of files (sorted paths, every k-th), so the
result depends only on the installed packages. Missing packages shrink the corpus; the built-in phrases below
always remain, so generation never fails for lack of text.
"""

from __future__ import annotations

import functools
import html
import os
import re

import numpy as np

HELP_ROOT = "/usr/share/libreoffice/help"
FORTUNE_ROOT = "/usr/share/games/fortunes"
MAX_FILES = 260  # per corpus: parsing all ~2.5k help pages would take seconds

# Short lines in the register of manga dialogue and sound effects (written for this project).
JA_PHRASES = (
    "えっ！？",
    "なに…？",
    "うそだろ",
    "ちょっと待って！",
    "行くぞ！",
    "ありがとう",
    "ごめんなさい…",
    "やった！！",
    "どうして？",
    "そんな…",
    "ふざけるな！",
    "大丈夫？",
    "わかった",
    "はぁ…",
    "おはよう！",
    "またね〜",
    "まさか…",
    "知らないよ",
    "早く逃げて！",
    "だめだ…",
    "これは…！",
    "あれ？",
    "うわああっ",
    "よし！",
    "なんで俺が…",
    "本当に？",
    "静かにしろ",
    "いいぞぉ",
    "すごい！",
    "きゃあっ！",
    "ちっ…",
    "おいっ！",
    "夢…？くだらない",
    "実に夢がない",
    "十年後――夏",
    "翌朝",
    "その頃…",
    "負けるもんか！",
    "ほっといて",
    "ねえ、聞いてる？",
    "ふふっ",
    "あはは",
    "うん",
    "ええ〜っ！？",
    "もう限界だ…",
    "ついに来たか",
    "待ってたよ",
)
JA_SFX = (
    "ドドド",
    "ゴゴゴ",
    "バン",
    "ドン",
    "ザワ…",
    "ガシャーン",
    "ドカッ",
    "ビシッ",
    "パァン",
    "ゴォォ",
    "シーン",
    "ズズズ",
    "バキッ",
    "ガタッ",
    "ドキドキ",
    "ゾクッ",
    "ヒュー",
    "ザッ",
    "ダダダ",
    "ぷよぷよ",
    "ごくっ",
    "ぱちっ",
    "どーん",
    "ばっ",
    "ぎゅっ",
    "ドサッ",
    "カッ",
    "ピシャーン",
    "ガラッ",
    "ボッ",
    "ズドドド",
    "ふわっ",
    "にこっ",
    "キーン",
    "ジリリ",
    "コツコツ",
    "ぐぅ",
    "ばたん",
    "ざわざわ",
    "しーん",
    "ブルブル",
    "ガーン",
)
EN_PHRASES = (
    "WHAT?!",
    "HEY!",
    "WAIT FOR ME!",
    "I KNEW IT...",
    "NO WAY!",
    "THANK YOU.",
    "LET'S GO!",
    "HUH?",
    "WHERE ARE YOU GOING?",
    "DON'T MOVE!",
    "IT'S OVER.",
    "YOU'RE LATE!",
    "OKAY...",
    "WHO ARE YOU?",
    "I'M SORRY.",
    "GET DOWN!",
    "MEANWHILE...",
    "THE NEXT MORNING",
    "LATER THAT DAY...",
    "HMM.",
)
EN_SFX = (
    "BOOM!",
    "KRAK!",
    "WHAM!",
    "BAM!",
    "THUD",
    "SWOOSH",
    "ZAP!",
    "CRASH!",
    "POW!",
    "BZZZ",
    "SNAP",
    "RUMBLE",
    "CLICK",
    "FWOOSH",
    "SPLASH!",
    "KA-BOOM",
    "THWACK",
    "SLAM!",
    "RING RING",
    "AAAAH!",
)
KO_PHRASES = (
    "뭐?!",
    "잠깐만!",
    "고마워",
    "미안해…",
    "가자!",
    "정말이야?",
    "어떻게 된 거야?",
    "괜찮아?",
    "안 돼!",
    "그럴 리가…",
    "쾅!",
    "두근두근",
    "휘익",
    "쿵",
    "빨리 와!",
    "누구세요?",
    "으아악!",
    "좋아!",
)
KO_SFX = ("쾅", "쿵", "휘익", "두근두근", "쨍그랑", "콰앙", "철컥", "부르르", "슈욱", "와아아")
ZH_PHRASES = (
    "什么？！",
    "等一下！",
    "谢谢你",
    "对不起……",
    "走吧！",
    "真的吗？",
    "怎么了？",
    "没事吧？",
    "不行！",
    "不可能……",
    "轰！",
    "快跑！",
    "你是谁？",
    "太好了！",
    "哈哈哈",
    "第二天早上",
)
ZH_SFX = ("轰", "砰", "咚", "嗖", "啪", "哗啦", "咔嚓", "呼呼", "噗通", "叮")

KANA_RE = re.compile(r"[\u3040-\u30ff]")
HANGUL_RE = re.compile(r"[\uac00-\ud7a3]")
HAN_RE = re.compile(r"[\u4e00-\u9fff]")
P_RE = re.compile(r"<p[^>]*>(.*?)</p>", re.S)
TAG_RE = re.compile(r"<[^>]+>")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def _subset(paths: list[str], limit: int = MAX_FILES) -> list[str]:
    paths = sorted(paths)
    step = max(1, len(paths) // limit)
    return paths[::step][:limit]


def _help_files(lang: str) -> list[str]:
    root = os.path.join(HELP_ROOT, lang, "text")
    out = []
    for dirpath, _, files in os.walk(root):
        out.extend(os.path.join(dirpath, f) for f in files if f.endswith(".html"))
    return _subset(out)


def _help_paragraphs(lang: str, keep: re.Pattern) -> list[str]:
    paras = []
    for path in _help_files(lang):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        for raw in P_RE.findall(text):
            p = html.unescape(TAG_RE.sub("", raw)).strip()
            if keep.search(p) and "LibreOffice" not in p and "%" not in p:
                paras.append(" ".join(p.split()))
    return paras


# What a CJK manga line is made of: kana, han, hangul, CJK and full-width punctuation, a few digits/letters.
_CJK_OK = re.compile(
    r"^[\u3000-\u30ff\u4e00-\u9fff\uac00-\ud7a3\uff01-\uff5b\uff5d\uff5e0-9A-Za-z！？…、。，「」『』（）・ー〜]+$"
)


def _clean_cjk(s: str) -> str:
    # Drop long ASCII runs (menu names, code) that a manga line would not have; reject leftovers with symbols.
    s = re.sub(r"[A-Za-z0-9_./\\:;=<>\[\]{}\"'$#@&*+|^~`-]{3,}", "", s)
    s = re.sub(r"\s+", "", s).strip("、,。 ")
    return s if _CJK_OK.match(s) else ""


@functools.cache
def _ja() -> tuple[str, ...]:
    out = []
    for p in _help_paragraphs("ja", KANA_RE):
        for s in p.split("。"):
            s = _clean_cjk(s)
            if 3 <= len(s) <= 40 and KANA_RE.search(s):
                out.append(s)
    return tuple(out)


@functools.cache
def _ko() -> tuple[str, ...]:
    out = []
    for p in _help_paragraphs("ko", HANGUL_RE):
        for s in re.split(r"(?<=[.?!])\s+", p):
            s = re.sub(r"[A-Za-z0-9_./\\:;=<>\[\]{}\"'$#@&*+|^~`-]{3,}", "", s).strip()
            s = " ".join(s.split())
            if 3 <= len(s) <= 50 and HANGUL_RE.search(s):
                out.append(s)
    return tuple(out)


def _fortune_entries(name: str) -> list[str]:
    path = os.path.join(FORTUNE_ROOT, name)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = ANSI_RE.sub("", fh.read())
    except OSError:
        return []
    return [e.strip() for e in text.split("\n%\n") if e.strip()]


@functools.cache
def _zh() -> tuple[str, ...]:
    out = []
    paras = _help_paragraphs("zh-CN", HAN_RE)
    for name in ("chinese", "tang300", "song100"):
        paras.extend(_fortune_entries(name))
    for p in paras:
        for s in re.split(r"[。！？\n]", p):
            s = _clean_cjk(s)
            if 3 <= len(s) <= 36 and HAN_RE.search(s) and not KANA_RE.search(s):
                out.append(s)
    return tuple(out)


@functools.cache
def _en() -> tuple[str, ...]:
    out = []
    for name in (
        "fortunes",
        "humorists",
        "literature",
        "people",
        "wisdom",
        "pets",
        "kids",
        "love",
        "work",
        "riddles",
        "platitudes",
        "men-women",
        "miscellaneous",
        "startrek",
        "pratchett",
    ):
        for e in _fortune_entries(name):
            if "--" in e:
                e = e.split("--")[0]
            e = " ".join(e.split())
            for s in re.split(r"(?<=[.?!])\s+", e):
                if 4 <= len(s) <= 90 and s.isascii() and not re.search(r"[\\/<>{}|_=]", s):
                    out.append(s)
    return tuple(out)


_CORPUS = {"ja": _ja, "ko": _ko, "zh": _zh, "en": _en}
_PHRASES = {"ja": JA_PHRASES, "ko": KO_PHRASES, "zh": ZH_PHRASES, "en": EN_PHRASES}
_SFX = {"ja": JA_SFX, "ko": KO_SFX, "zh": ZH_SFX, "en": EN_SFX}

_JA_ENDINGS = ("", "", "", "！", "？", "…", "！？", "！！", "…？", "〜", "ー！", "っ！", "ね", "よ！")
_HIRAGANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"


# Pieces of spoken Japanese (written for this project) for conversational lines: the help corpus is formal.
_JA_SUBJECTS = (
    "俺は",
    "私は",
    "お前が",
    "あいつの",
    "先生も",
    "みんなで",
    "君に",
    "僕だって",
    "この町の",
    "あの子は",
    "今日は",
    "明日こそ",
    "彼女が",
    "兄さんの",
    "ここで",
    "",
)
_JA_MIDDLES = (
    "本当に",
    "もう",
    "絶対に",
    "ちょっと",
    "まだ",
    "ずっと",
    "やっぱり",
    "全然",
    "きっと",
    "すぐ",
    "",
)
_JA_VERBS = (
    "行く",
    "知らない",
    "やめろ",
    "待ってる",
    "信じてる",
    "帰ろう",
    "見たんだ",
    "負けない",
    "大好きだ",
    "わからない",
    "忘れないで",
    "来たのか",
    "守ってみせる",
    "許さない",
    "聞いてくれ",
    "遅刻する",
    "終わりだ",
    "始めよう",
    "できるさ",
    "食べたい",
)
_JA_TAILS = ("", "よ", "ね", "のか", "ぞ", "だろ", "って", "から", "けど…", "んだ", "かな", "わ")
_JA_PUNCT_ONLY = ("……", "…！", "！？", "？", "……？", "ん……", "！！", "…", "え…", "あ", "は？", "ふぅ…")


def _ja_spoken(rng: np.random.Generator) -> str:
    if rng.random() < 0.12:
        return _JA_PUNCT_ONLY[int(rng.integers(len(_JA_PUNCT_ONLY)))]
    parts = (_JA_SUBJECTS, _JA_MIDDLES, _JA_VERBS, _JA_TAILS)
    return "".join(p[int(rng.integers(len(p)))] for p in parts)


def sentence(rng: np.random.Generator, script: str) -> str:
    """One line of text in ``script`` ("ja", "ko", "zh", "en"), mostly real sentences."""
    corpus = _CORPUS[script]()
    r = rng.random()
    if script == "ja" and r < 0.35:
        return _ja_spoken(rng) + _JA_ENDINGS[int(rng.integers(len(_JA_ENDINGS)))] * int(rng.random() < 0.5)
    if corpus and r < 0.75:
        s = corpus[int(rng.integers(len(corpus)))]
    else:
        phrases = _PHRASES[script]
        s = phrases[int(rng.integers(len(phrases)))]
    if script == "ja":
        if len(s) > 8 and rng.random() < 0.5:
            # Manga lines are short: cut at a particle-sized boundary.
            cut = int(rng.integers(4, min(len(s), 24) + 1))
            s = s[:cut]
        s += _JA_ENDINGS[int(rng.integers(len(_JA_ENDINGS)))]
        if rng.random() < 0.08:
            s = "「" + s + "」"
    elif script in ("zh", "ko") and rng.random() < 0.4:
        s += (
            ("！", "？", "……", "！？")[int(rng.integers(4))]
            if script == "zh"
            else ("!", "?", "…", "?!")[int(rng.integers(4))]
        )
    return s


def sound_effect(rng: np.random.Generator, script: str) -> str:
    """A sound effect word (katakana/hiragana, hangul, hanzi or English onomatopoeia)."""
    words = _SFX[script]
    s = words[int(rng.integers(len(words)))]
    if script == "ja" and rng.random() < 0.3:
        s += ("ッ", "ー", "！", "…")[int(rng.integers(4))]
    return s


def furigana_for(rng: np.random.Generator, n_kanji: int) -> str:
    """Plausible-looking ruby (1-2 hiragana per kanji); the reading itself does not matter for detection."""
    n = max(1, n_kanji * int(rng.integers(1, 3)))
    return "".join(_HIRAGANA[int(i)] for i in rng.integers(len(_HIRAGANA), size=n))
