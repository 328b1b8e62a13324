"""kesu.messages: every failure becomes a message that says what to do and that nothing changed."""

from __future__ import annotations

from tests.krita_plugin.conftest import kesu_module

messages = kesu_module("messages")
actions = kesu_module("actions")
ProtocolError = kesu_module("kesu_protocol").ProtocolError


def test_user_errors_are_shown_as_they_are():
    r = messages.report_for(actions.UserError("Select the text first."), "/l/k.log", "/c/server.log")
    assert r.text == "Select the text first." and not r.silent and not r.log_details


def test_engine_errors_name_the_fix_and_the_logs():
    err = ProtocolError("the Kesu engine interpreter /x does not exist; re-run the Kesu installer", "not_installed")
    r = messages.report_for(err, "/l/krita-plugin.log", "/c/server.log")
    assert r.title == "Kesu engine not installed"
    assert "re-run the Kesu installer" in r.text and "/l/krita-plugin.log" in r.text and "/c/server.log" in r.text
    assert "Your document was not changed." in r.text


def test_cancel_is_silent():
    assert messages.report_for(ProtocolError("cancelled", "cancelled"), "a", "b").silent


def test_unexpected_errors_ask_for_a_report_with_the_log():
    r = messages.report_for(KeyError("boom"), "/l/krita-plugin.log", "/c/server.log")
    assert "KeyError" in r.text and "/l/krita-plugin.log" in r.text and "not changed" in r.text
