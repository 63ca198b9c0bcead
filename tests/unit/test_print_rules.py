"""Insert and campaign rules (server.compose.rules) and the print settings that resolve
insert ids to feeders, without a server."""

from __future__ import annotations

import pytest

from server.compose.rules import RuleError, campaign_context, choose, parse_rules, tenant_rules
from server.printing.queue import PrintSettings

RULES = parse_rules([
    {"id": "terms", "tenant": "nordkort", "insert": "terms-2027",
     "when": {"country": "NO", "kind": "invoice"}},
    {"id": "premium", "tenant": "nordkort", "insert": "premium-leaflet",
     "when": {"segment": ["premium", "business"]},
     "campaign": {"area": "main", "id": "upgrade", "title": "Oppgrader", "body": "Nå."}},
    {"id": "fallback", "tenant": "nordkort",
     "campaign": {"area": "main", "id": "app", "title": "Appen", "body": "Last ned."}},
    {"id": "other-tenant", "tenant": "fjord", "insert": "x", "when": {"country": "NO"}},
])


def test_matching_rules_choose_inserts_and_first_campaign_per_area():
    facts = {"country": "NO", "kind": "invoice", "segment": "business"}
    choice = choose(tenant_rules(RULES, "nordkort"), facts, physical=True)
    assert choice.inserts == ("premium-leaflet", "terms-2027")
    assert [c.campaign_id for c in choice.campaigns] == ["upgrade"]
    assert choice.rules == ("terms", "premium")


def test_no_match_and_missing_facts_and_email_only():
    choice = choose(tenant_rules(RULES, "nordkort"), {"country": "SE", "kind": "invoice"},
                    physical=True)
    assert choice.inserts == () and [c.campaign_id for c in choice.campaigns] == ["app"]
    # a physical insert is never chosen for a document that is not printed
    no_print = choose(tenant_rules(RULES, "nordkort"), {"country": "NO", "kind": "invoice"},
                      physical=False)
    assert no_print.inserts == ()
    assert tenant_rules(RULES, "fjord")[0].matches({"country": "NO"})
    assert not tenant_rules(RULES, "fjord")[0].matches({})


def test_boolean_facts_compare_as_true_false():
    rule = parse_rules([{"id": "c", "insert": "i", "when": {"credit_balance": True}}])[0]
    assert rule.matches({"credit_balance": True}) and not rule.matches({"credit_balance": False})


def test_campaign_fills_the_template_slot_only_when_the_data_has_none():
    choice = choose(tenant_rules(RULES, "nordkort"), {}, physical=True)
    assert campaign_context({"campaign": None}, choice.campaigns)["campaign"]["title"] == "Appen"
    assert campaign_context({"campaign": {"title": "own"}}, choice.campaigns) == {}


@pytest.mark.parametrize("entry", [
    {"insert": "x"},                                     # no id
    {"id": "a"},                                         # chooses nothing
    {"id": "a", "insert": "x", "colour": "red"},         # unknown key
    {"id": "a", "campaign": {"title": "t"}},             # campaign without id/body
])
def test_malformed_rules_are_refused(entry):
    with pytest.raises(RuleError):
        parse_rules([entry])


def test_print_settings_resolve_feeders_per_profile_and_check_them():
    settings = PrintSettings.from_dict({
        "inserts": {"terms-2027": {"feeder": 1, "feeders": {"pb-di-negative": 4}}},
        "tenants": {"fjord": {"printshop": "acme", "profile": "pb-di-negative"}},
    })
    assert settings.feeders(["terms-2027"], "default") == {1}
    assert settings.feeders(["terms-2027"], "pb-di-negative") == {4}
    assert settings.destination("fjord") == ("acme", "pb-di-negative")
    assert settings.destination("anyone") == ("demo-print", "default")
    with pytest.raises(ValueError, match="no feeder"):
        settings.feeders(["unknown"], "default")
    with pytest.raises(ValueError, match="feeder 4 does not exist"):
        PrintSettings.from_dict({"inserts": {"big": {"feeder": 4}}})  # default has feeders 1-3
    with pytest.raises(ValueError, match="sort"):
        PrintSettings.from_dict({"sort": ["colour"]})


# A rule the print line cannot follow stops the server at start (server.app wraps the
# ValueError into a ConfigError), naming the rule and the insert: QA H1, where a rule naming
# an insert outside the catalogue started quietly and failed every matching Compose.
@pytest.mark.parametrize(("settings", "message"), [
    ({"rules": [{"id": "ghost", "tenant": "demo", "when": {"segment": "private"},
                 "insert": "not-in-catalogue"}],
      "inserts": {"terms-change-2027": {"feeder": 1}}},
     r"printing\.rules\[0\] \(id 'ghost'\): insert 'not-in-catalogue' is not in the insert "
     r"catalogue .*catalogued: terms-change-2027"),
    ({"rules": [{"id": "terms", "tenant": "demo", "insert": "terms-2027"}],
      "inserts": {"terms-2027": {"feeders": {"pb-di-negative": 3}}}},
     r"printing\.rules\[0\] \(id 'terms'\): insert 'terms-2027' has no feeder on profile "
     r"'default', the profile tenant 'demo' prints with"),
    ({"rules": [{"id": "orphan", "insert": "terms-2027"}],
      "inserts": {"terms-2027": {"grams": 4}}},
     r"\(id 'orphan'\): insert 'terms-2027' has no feeder on any print profile"),
    ({"inserts": {"terms-2027": {"feeders": {"pb-di-negativ": 3}}}},
     r"printing\.inserts\.terms-2027\.feeders: unknown profile 'pb-di-negativ'"),
])
def test_print_settings_refuse_a_rule_whose_insert_no_feeder_holds(settings, message):
    with pytest.raises(ValueError, match=message):
        PrintSettings.from_dict(settings)


def test_a_rule_on_a_tenant_whose_profile_holds_the_insert_passes():
    settings = PrintSettings.from_dict({
        "tenants": {"fjord": {"profile": "pb-di-negative"}},
        "inserts": {"terms-2027": {"feeders": {"pb-di-negative": 3}}},
        "rules": [{"id": "terms", "tenant": "fjord", "insert": "terms-2027"}]})
    assert settings.feeders(["terms-2027"], "pb-di-negative") == {3}


def test_the_choice_names_the_rule_behind_each_insert():
    choice = choose(tenant_rules(RULES, "nordkort"), {
        "tenant": "nordkort", "country": "NO", "kind": "invoice", "segment": "premium"},
        physical=True)
    assert choice.insert_rules == (("premium-leaflet", "premium"), ("terms-2027", "terms"))
