"""Insert and campaign rules: a document's facts -> the physical inserts and campaign areas.

A rule is data: a condition over the composition's facts and what it chooses when the
condition holds -- a physical insert (a leaflet the inserting machine adds from a feeder)
and/or a campaign area (a text block printed in one of the layout's campaign slots).

Where rules come from, and in which order they are tried:

1. the tenant's rules (settings: ``[[printing.rules]]`` with ``tenant = "..."``): a bank's
   marketing and legal notices (a segment's campaign, a terms-change notice), changed without
   touching layouts;
2. the layout's rules (``[[rules]]`` in ``layouts/<id>/<version>/manifest.toml``): what belongs
   to the document type itself, versioned with the layout.

Every matching rule adds its insert (inserts are a set: an insert comes once); for each
campaign area the *first* matching rule wins, so a tenant rule overrides a layout default.
Physical inserts are chosen only when the channel plan reaches print (nothing to insert in an
email); which feeder holds an insert is a print-shop fact, resolved when a batch is imposed
(`server.printing.queue.PrintSettings.inserts`, checked against the rules when the settings
load; the piece is resolved again before its document is archived).

Rule format (TOML, the same in the manifest and the settings)::

    [[rules]]
    id = "terms-2027-no-cards"               # names the rule in the composition and logs
    when = { country = "NO", kind = "invoice" }   # every key must match; a list = any of
    insert = "terms-change-2027"              # optional: a physical insert id
    campaign = { area = "main", id = "gold-upgrade", title = "...", body = "..." }  # optional

A campaign can be an A/B experiment: instead of one title and body it names the experiment
and its variants with their weights; each customer sees the variant
`server.compose.variants.assign(tenant, customer id, experiment, weights)` gives (the same
every time), and the chosen `CampaignArea` records experiment and variant, so exposures,
responses and conversions are counted per variant (server/surveys/experiments.py)::

    campaign = { area = "main", id = "gold-upgrade", experiment = "gold-upgrade-2027", variants = [
      { id = "A", weight = 50, title = "Gull med cashback", body = "..." },
      { id = "B", weight = 50, title = "Gull uten årsavgift", body = "..." } ] }

Facts a rule can test: the builder's facts (card invoices: ``segment``, ``product``,
``country``, ``credit_balance``; reminders: ``stage``, ``days_overdue``; letters:
``has_campaign``) plus ``tenant``, ``layout``, ``kind``, ``locale``, ``country`` and
``postal_code`` of the recipient. A fact the document does not have never matches.

Pure: no I/O. Rules are parsed (and checked) once, when layouts and settings load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.compose.model import CampaignArea
from server.compose.variants import VariantError, assign, check_weights

_RULE_KEYS = frozenset({"id", "when", "insert", "campaign", "tenant"})
_CAMPAIGN_KEYS = frozenset({"area", "id", "title", "body", "experiment", "variants"})
_VARIANT_KEYS = frozenset({"id", "weight", "title", "body"})


class RuleError(ValueError):
    """A rule in a manifest or in the settings is malformed (a deployment error)."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Mapping[str, tuple[Any, ...]]  # fact -> accepted values
    insert: str | None = None
    campaign: CampaignArea | None = None
    tenant: str | None = None  # settings rules: the tenant they belong to
    # A/B campaign: (variant area, weight) pairs; `campaign` is then the first variant
    variants: tuple[tuple[CampaignArea, float], ...] = ()

    def campaign_for(self, tenant: str, customer_id: str) -> CampaignArea | None:
        """The campaign this customer sees: the variant assigned to them, if any."""
        if not self.variants:
            return self.campaign
        experiment = self.variants[0][0].experiment_id
        chosen = assign(tenant, customer_id, experiment,
                        [(area.variant, weight) for area, weight in self.variants])
        return next(area for area, _ in self.variants if area.variant == chosen)

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(
            name in facts and _normal(facts[name]) in accepted
            for name, accepted in self.when.items()
        )


@dataclass(frozen=True, slots=True)
class Choice:
    """What the rules chose for one document."""

    inserts: tuple[str, ...] = ()
    campaigns: tuple[CampaignArea, ...] = ()
    rules: tuple[str, ...] = ()  # ids of the rules that matched, in order
    # (insert id, rule id): the rule that chose each insert, so a print piece that cannot
    # be made names the rule to fix (server.printing.queue.UnprintablePiece)
    insert_rules: tuple[tuple[str, str], ...] = ()


def _normal(value: Any) -> Any:
    """Facts and condition values compare as strings, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_rule(entry: Mapping[str, Any], where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise RuleError(f"{where}: a rule must be a table")
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(f"{where}.id: is required")
    when = entry.get("when", {})
    if not isinstance(when, Mapping):
        raise RuleError(f"{where}.when: must be a table of fact = value(s)")
    conditions = {
        str(name): tuple(_normal(v) for v in (value if isinstance(value, list) else [value]))
        for name, value in when.items()
    }
    insert = entry.get("insert")
    if insert is not None and (not isinstance(insert, str) or not insert):
        raise RuleError(f"{where}.insert: must be an insert id")
    campaign = None
    variants: tuple[tuple[CampaignArea, float], ...] = ()
    if "campaign" in entry:
        data = entry["campaign"]
        if not isinstance(data, Mapping) or set(data) - _CAMPAIGN_KEYS:
            raise RuleError(f"{where}.campaign: keys are {', '.join(sorted(_CAMPAIGN_KEYS))}")
        if "variants" in data:
            variants = _parse_variants(data, f"{where}.campaign")
            campaign = variants[0][0]
        else:
            missing = [k for k in ("id", "title", "body") if not data.get(k)]
            if missing:
                raise RuleError(f"{where}.campaign: missing {', '.join(missing)}")
            campaign = CampaignArea(area=str(data.get("area", "main")),
                                    campaign_id=str(data["id"]),
                                    title=str(data["title"]), body=str(data["body"]))
    if insert is None and campaign is None:
        raise RuleError(f"{where}: a rule must choose an insert, a campaign or both")
    tenant = entry.get("tenant")
    return Rule(rule_id, conditions, insert, campaign, str(tenant) if tenant else None,
                variants)


def _parse_variants(data: Mapping[str, Any], where: str
                    ) -> tuple[tuple[CampaignArea, float], ...]:
    """An A/B campaign's variants, each a complete campaign area with its weight."""
    experiment, entries = data.get("experiment"), data["variants"]
    if not isinstance(experiment, str) or not experiment or not data.get("id"):
        raise RuleError(f"{where}: a campaign with variants needs `id` and `experiment`")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{where}.variants: must be a list of variant tables")
    pairs = []
    for n, variant in enumerate(entries):
        at = f"{where}.variants[{n}]"
        if not isinstance(variant, Mapping) or set(variant) - _VARIANT_KEYS:
            raise RuleError(f"{at}: keys are {', '.join(sorted(_VARIANT_KEYS))}")
        missing = [k for k in ("id", "title", "body") if not variant.get(k)]
        if missing:
            raise RuleError(f"{at}: missing {', '.join(missing)}")
        pairs.append((CampaignArea(
            area=str(data.get("area", "main")), campaign_id=str(data["id"]),
            title=str(variant["title"]), body=str(variant["body"]),
            experiment_id=experiment, variant=str(variant["id"])), variant.get("weight", 1)))
    try:
        check_weights([(area.variant, weight) for area, weight in pairs], f"{where}.variants")
    except VariantError as exc:
        raise RuleError(str(exc)) from exc
    return tuple((area, float(weight)) for area, weight in pairs)


def parse_rules(entries: Iterable[Mapping[str, Any]], where: str = "rules") -> tuple[Rule, ...]:
    return tuple(parse_rule(entry, f"{where}[{n}]") for n, entry in enumerate(entries))


def layout_rules(manifest: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The `[[rules]]` of a layout manifest."""
    return parse_rules(manifest.get("rules", []), "manifest rules")


def tenant_rules(rules: Sequence[Rule], tenant: str) -> tuple[Rule, ...]:
    """The settings rules that belong to `tenant`."""
    return tuple(rule for rule in rules if rule.tenant == tenant)


def choose(
    rules: Sequence[Rule], facts: Mapping[str, Any], *, physical: bool,
    customer_id: str = "",
) -> Choice:
    """Try the rules in order; `physical` = the document is printed, so inserts apply.
    An A/B campaign shows the variant assigned to (`facts["tenant"]`, `customer_id`)."""
    inserts: list[str] = []
    insert_rules: list[tuple[str, str]] = []
    campaigns: dict[str, CampaignArea] = {}
    matched: list[str] = []
    for rule in rules:
        if not rule.matches(facts):
            continue
        chose = False
        if rule.insert and physical and rule.insert not in inserts:
            inserts.append(rule.insert)
            insert_rules.append((rule.insert, rule.id))
            chose = True
        if rule.campaign and rule.campaign.area not in campaigns:
            campaign = rule.campaign_for(str(facts.get("tenant", "")), customer_id)
            assert campaign is not None
            campaigns[campaign.area] = campaign
            chose = True
        if chose:
            matched.append(rule.id)
    return Choice(tuple(sorted(inserts)), tuple(campaigns.values()), tuple(matched),
                  tuple(sorted(insert_rules)))


def campaign_context(
    context: Mapping[str, Any], campaigns: Sequence[CampaignArea]
) -> dict[str, Any]:
    """Template variables for the layouts whose templates read one `campaign` (the welcome
    letter): the rules' `main` area fills it when the data brought no campaign of its own."""
    main = next((c for c in campaigns if c.area == "main"), None)
    if main is None or context.get("campaign"):
        return {}
    return {"campaign": {"title": main.title, "body": main.body, "url": None}}
