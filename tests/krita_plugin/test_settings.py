"""kesu.settings: validation, parsing of the dialog's text and persistence through a store."""

from __future__ import annotations

import pytest

from tests.krita_plugin.conftest import kesu_module

st = kesu_module("settings")


class DictStore:
    def __init__(self, **values):
        self.values = dict(values)

    def read(self, key):
        return self.values.get(key)

    def write(self, key, value):
        self.values[key] = value


def test_defaults_and_engine_options():
    s = st.load(DictStore())
    assert s == st.Settings(4, 0.5, "", False)
    assert s.engine_options() == {"grow_px": 4, "threshold": 0.5}
    assert s.text == "dialogue"  # sound effects are kept unless the user asks


def test_save_then_load_roundtrip():
    store = DictStore()
    st.save(store, st.Settings(9, 0.35, " /opt/kesu/bin/python ", True))
    assert store.values == {"grow_px": "9", "threshold": "0.35", "engine_python": "/opt/kesu/bin/python",
                            "include_sfx": "true"}
    assert st.load(store) == st.Settings(9, 0.35, "/opt/kesu/bin/python", True)
    assert st.load(store).text == "all"
    st.save(store, st.Settings(9, 0.35, "", False))
    assert store.values["include_sfx"] == "false" and st.load(store).include_sfx is False


def test_settings_of_an_older_kesu_load_with_sound_effects_off():
    """A kritarc written before "Include sound effects" existed has no include_sfx key: it takes its default."""
    old = DictStore(grow_px="9", threshold="0.35", engine_python="/opt/kesu/bin/python")
    assert st.load(old) == st.Settings(9, 0.35, "/opt/kesu/bin/python", False)


@pytest.mark.parametrize("raw, want", [("true", True), ("True", True), ("1", True), ("false", False),
                                       ("0", False), ("yes please", False), ("", False)])
def test_stored_include_sfx(raw, want):
    assert st.load(DictStore(include_sfx=raw)).include_sfx is want


@pytest.mark.parametrize("grow,thr,match", [
    ("-1", "0.5", "grow must be"), ("65", "0.5", "grow must be"), ("x", "0.5", "whole number"),
    ("4", "1.5", "threshold must be"), ("4", "0", "threshold must be"), ("4", "abc", "threshold must be"),
])  # fmt: skip
def test_parse_refuses_bad_values_with_a_message(grow, thr, match):
    with pytest.raises(st.SettingsError, match=match):
        st.parse(grow, thr, "")


def test_parse_accepts_good_values():
    assert st.parse(" 12 ", "0.7", "") == st.Settings(12, 0.7, "")
    assert st.parse("4", "0.5", "", include_sfx=True) == st.Settings(4, 0.5, "", True)


def test_bad_stored_values_fall_back_to_defaults_one_by_one():
    s = st.load(DictStore(grow_px="lots", threshold="0.25", engine_python=""))
    assert s == st.Settings(4, 0.25, "")
    s = st.load(DictStore(grow_px="99", threshold="7"))
    assert s == st.Settings()


def test_save_refuses_invalid():
    store = DictStore()
    with pytest.raises(st.SettingsError):
        st.save(store, st.Settings(100, 0.5, ""))
    assert store.values == {}
