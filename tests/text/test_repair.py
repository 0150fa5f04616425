"""streams.text.repair: generated Chinese text turned into mojibake comes back (exactly when no byte
was lost, else exact or U+FFFD per character); correct text is never touched."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.text.repair import REPLACEMENT, TextRepair, fold_fullwidth, repair_text


def gbk_chars(leads: range, trails: range) -> list[str]:
    found = []
    for lead in leads:
        for trail in trails:
            try:
                found.append(bytes((lead, trail)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    return found


COMMON = gbk_chars(range(0xB0, 0xD8), range(0xA1, 0xFF))  # GB2312 level-1: 3,755 hanzi
CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
RARE = [  # GBK extension characters, some with a byte CP1252 leaves undefined
    c for c in gbk_chars(range(0x81, 0xA1), range(0x80, 0xFF)) if not "\ue000" <= c <= "\uf8ff"
]
# A '?' is also just a question mark; it can only be read as a lost byte next to a kept one.
RARE_ONE_LOST = [c for c in RARE if sum(b in CP1252_UNDEFINED for b in c.encode("gbk")) <= 1]
ASCII = string.ascii_letters + string.digits + " ,.:;-_/@#()"  # no '?': it stands for lost bytes

hanzi_runs = st.text(alphabet=st.sampled_from(COMMON), min_size=2, max_size=8)
ascii_runs = st.text(alphabet=ASCII, max_size=6)


@st.composite
def chinese_text(draw: st.DrawFn) -> str:
    """Runs of at least two common hanzi between runs of ASCII, like real field values."""
    pieces = draw(st.lists(st.tuples(ascii_runs, hanzi_runs), min_size=1, max_size=3))
    return "".join(a + h for a, h in pieces) + draw(ascii_runs)


@st.composite
def text_with_rare_chars(draw: st.DrawFn, pool: list[str] = RARE) -> str:
    """Common hanzi with a few GBK extension characters, common ones at least twice as many."""
    rare = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
    common = draw(st.lists(st.sampled_from(COMMON), min_size=2 * len(rare) + 1, max_size=10))
    mixed = draw(st.permutations(common + rare))
    return draw(ascii_runs) + "".join(mixed) + draw(ascii_runs)


def lost_bytes(char: str) -> bool:
    return bool(CP1252_UNDEFINED & set(char.encode("gbk")))


def assert_exact_or_marked(repaired: TextRepair, original: str) -> None:
    assert repaired.changed
    assert len(repaired.text) == len(original)
    assert all(
        got in (want, REPLACEMENT) for got, want in zip(repaired.text, original, strict=True)
    )
    assert repaired.lossy == (REPLACEMENT in repaired.text)


# --- lossless mojibake is repaired exactly -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=chinese_text())
def test_gbk_read_as_latin1_is_repaired_exactly(text: str) -> None:
    mojibake = text.encode("gbk").decode("latin-1")
    assert repair_text(mojibake) == TextRepair(text, changed=True, source_encoding="gbk")


@settings(max_examples=200, deadline=None)
@given(text=chinese_text())
def test_gbk_read_as_cp1252_is_repaired_exactly(text: str) -> None:
    mojibake = text.encode("gbk").decode("cp1252")
    assert repair_text(mojibake) == TextRepair(text, changed=True, source_encoding="gbk")


@settings(max_examples=150, deadline=None)
@given(text=text_with_rare_chars())
def test_extension_characters_read_as_latin1_are_repaired_exactly(text: str) -> None:
    mojibake = text.encode("gbk").decode("latin-1")
    assert repair_text(mojibake) == TextRepair(text, changed=True, source_encoding="gbk")


@settings(max_examples=100, deadline=None)
@given(text=chinese_text())
def test_utf8_read_as_latin1_is_repaired_exactly(text: str) -> None:
    mojibake = text.encode("utf-8").decode("latin-1")
    assert repair_text(mojibake) == TextRepair(text, changed=True, source_encoding="utf-8")


# --- lost bytes: recovered where only one reading fits, else U+FFFD ----------------------------


@settings(max_examples=150, deadline=None)
@given(text=text_with_rare_chars())
def test_undefined_cp1252_bytes_turned_into_fffd_are_recovered_or_marked(text: str) -> None:
    repaired = repair_text(text.encode("gbk").decode("cp1252", errors="replace"))
    assert_exact_or_marked(repaired, text)
    for got, want in zip(repaired.text, text, strict=True):
        assert got == want or lost_bytes(want)  # only characters that lost a byte are marked


@settings(max_examples=150, deadline=None)
@given(text=text_with_rare_chars(RARE_ONE_LOST))
def test_undefined_cp1252_bytes_turned_into_question_marks_are_recovered_or_marked(
    text: str,
) -> None:
    mojibake = text.encode("gbk").decode("cp1252", errors="replace").replace(REPLACEMENT, "?")
    repaired = repair_text(mojibake)
    assert_exact_or_marked(repaired, text)
    for got, want in zip(repaired.text, text, strict=True):
        assert got == want or lost_bytes(want)


SOFT_HYPHENED = [c for c in COMMON if 0xAD in c.encode("gbk")]  # 碍杯箔抄...: trail byte 0xAD
NOT_HYPHENED = [c for c in COMMON if 0xAD not in c.encode("gbk")]


@st.composite
def text_with_one_soft_hyphen(draw: st.DrawFn) -> str:
    hanzi = draw(st.lists(st.sampled_from(NOT_HYPHENED), min_size=1, max_size=8))
    hanzi.insert(draw(st.integers(0, len(hanzi))), draw(st.sampled_from(SOFT_HYPHENED)))
    return draw(ascii_runs) + "".join(hanzi) + draw(ascii_runs)


@settings(max_examples=200, deadline=None)
@given(text=text_with_one_soft_hyphen())
def test_one_dropped_soft_hyphen_is_restored_or_marked(text: str) -> None:
    data = text.encode("gbk")
    repaired = repair_text(data.decode("latin-1").replace("\xad", ""))
    if repaired.changed:  # unchanged only when not one character could be told for sure
        assert_exact_or_marked(repaired, text)


@pytest.mark.parametrize("text", ["画像比对", "原因不明", "谁报的警", "拳打脚踢"])
def test_dropped_soft_hyphen_is_restored_when_only_one_reading_is_common(text: str) -> None:
    mojibake = text.encode("gbk").decode("latin-1").replace("\xad", "")
    assert len(mojibake) == 2 * len(text) - 1
    assert repair_text(mojibake) == TextRepair(text, changed=True, source_encoding="gbk")


def test_characters_a_dropped_byte_leaves_undecidable_become_replacement_characters() -> None:
    text = "嫌疑人已经逃离现场"  # 经 is BE AD; every realignment before it reads as common hanzi
    repaired = repair_text(text.encode("gbk").decode("latin-1").replace("\xad", ""))
    assert repaired.text == REPLACEMENT * 6 + "离现场"
    assert repaired.lossy


def test_replacement_character_for_an_undefined_byte_marks_only_its_character() -> None:
    text = "值班丂员"  # 丂 is 81 40: CP1252 has no 0x81
    repaired = repair_text(text.encode("gbk").decode("cp1252", errors="replace"))
    assert repaired == TextRepair("值班\ufffd员", changed=True, lossy=True, source_encoding="gbk")


def test_extension_character_whose_bytes_cp1252_defines_is_repaired_exactly() -> None:
    mojibake = "王喆".encode("gbk").decode("cp1252")  # 喆 is 86 B4: '†´'
    assert repair_text(mojibake).text == "王喆"


# --- correct text is never touched -------------------------------------------------------------

LATIN1_WORDS = [
    "café", "Müller", "naïve", "São Paulo", "Ångström", "Straße", "Zürich", "garçon", "déjà vu",
    "crème brûlée", "smörgåsbord", "Málaga", "Ñandú", "Øresund", "Ærø", "Bjørk", "AÇÃO",
    "INFORMAÇÕES SOBRE AÇÃO", "jalapeño", "fiancée", "½ price, 20°C ± 2", "© 2022 Société",
]  # fmt: skip


@pytest.mark.parametrize("text", LATIN1_WORDS)
def test_legitimate_latin1_text_is_untouched(text: str) -> None:
    assert repair_text(text) == TextRepair(text)


ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÄÅÇÈÉÊÌÍÎÑÒÓÔÖØÙÚÛÜ"
syllables = st.tuples(
    st.sampled_from(string.ascii_letters), st.sampled_from(ACCENTED), st.sampled_from("lnrst")
).map("".join)
latin_words = st.lists(syllables, min_size=1, max_size=4).map("".join)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(latin_words, min_size=1, max_size=6))
def test_latin_words_with_accents_are_untouched(words: list[str]) -> None:
    text = " ".join(words)
    assert repair_text(text) == TextRepair(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=string.printable))
def test_ascii_is_untouched(text: str) -> None:
    assert repair_text(text) == TextRepair(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([*COMMON, *ASCII, "·", "，", "。", "？"])))
def test_correct_chinese_text_is_untouched(text: str) -> None:
    assert repair_text(text) == TextRepair(text)


def test_chinese_next_to_a_mojibake_run_keeps_and_repairs_both() -> None:
    repaired = repair_text("张三 " + "李四".encode("gbk").decode("latin-1"))
    assert repaired.text == "张三 李四"


def test_fold_fullwidth_turns_wide_ascii_and_ideographic_space_narrow() -> None:
    assert fold_fullwidth("ＯＦＦ－００７　Ａ") == "OFF-007 A"
    assert fold_fullwidth("警号０１２") == "警号012"
    assert fold_fullwidth("plain") == "plain"


def test_question_marks_between_hanzi_are_lost_bytes_not_punctuation() -> None:
    # Found by hypothesis: two rare characters whose undefined bytes became '?' were once read
    # as '?' + a third rare character + '?', unmarked.
    original = "啊啊啊亗倣啊啊"
    mojibake = original.encode("gbk").decode("cp1252", errors="replace").replace(REPLACEMENT, "?")
    repaired = repair_text(mojibake)
    assert repaired.text == "啊啊啊" + REPLACEMENT * 2 + "啊啊"
    assert repaired.lossy
