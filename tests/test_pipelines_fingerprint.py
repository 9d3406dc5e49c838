"""pipelines.fingerprint: the folded text behind content hashes and near-duplicate
checks is the per-character definition (simplified script, NFKC, case-folded, no
whitespace, punctuation, symbols, separators or controls), past the BMP too."""

from __future__ import annotations

import random
import unicodedata

from crawler.textnorm import to_simplified
from pipelines.fingerprint import content_hash, fold_text, item_text


def _by_definition(text: str) -> str:
    simplified = to_simplified(text.replace("産", "产"))
    normalised = unicodedata.normalize("NFKC", simplified).casefold()
    return "".join(ch for ch in normalised if not ch.isspace()
                   and not unicodedata.category(ch).startswith(("P", "S", "Z", "C")))


def test_fold_text_is_the_per_character_definition() -> None:
    rng = random.Random(7)
    planes = [(0x20, 0x250), (0x2000, 0x3100), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF),
              (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F)]
    samples = ["Hi，貴州！ 😀 國際在線\u3000x\u200by", "産業 ＡＢＣ ｶﾀｶﾅ", "", " \t\n",
               "𠀀𠀁 emoji 👍🏽 flag 🇨🇳", "\u00e9\u0301 ﬁ ①"]
    for _ in range(2000):
        lo, hi = rng.choice(planes)
        samples.append("".join(chr(rng.randrange(lo, hi)) for _ in range(rng.randrange(1, 40))))
    for text in samples:
        assert fold_text(text) == _by_definition(text), repr(text)
    assert fold_text("Hi，貴州！ 😀") == "hi贵州"
    assert content_hash("國際在線", "產業 😀") == content_hash("国际在线", "产业")


def test_item_text_folds_title_and_body_as_one_text() -> None:
    """item_text folds the parts apart (to reuse the content hash's folds); that must be
    the fold of ``title + "\n" + body``, which signatures were made from."""
    rng = random.Random(11)
    planes = [(0x20, 0x250), (0x300, 0x370), (0x2000, 0x3100), (0x4E00, 0x9FFF),
              (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF)]
    pairs = [("國際在線", "產業"), ("e", "\u0301x"), ("ﬁ", "①"), ("", ""), ("臺", "灣"),
             ("發", "展"), ("乾", "隆"), ("Hi，貴州！", "\u3000產業 😀")]
    for _ in range(2000):
        parts = []
        for _ in range(2):
            lo, hi = rng.choice(planes)
            parts.append("".join(chr(rng.randrange(lo, hi)) for _ in range(rng.randrange(0, 30))))
        pairs.append((parts[0], parts[1]))
    for title, body in pairs:
        assert item_text(title, body) == _by_definition(f"{title}\n{body}"), (title, body)
    assert item_text(None, "產業") == "产业"
