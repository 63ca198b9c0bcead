"""Journey files -> `Journey` values, checked on load with every problem named.

A journey is data, one TOML file per version: `journeys/<tenant>/<name>/<version>.toml`
(version: a positive integer). New instances start on the highest version; a running
instance finishes on the version it started with, so editing a journey means adding a file.

    name = "broker-follow-up"        # = the folder name
    version = 1                      # = the file name
    trigger = "account_opened"       # an event type (server/events/schemas)
    priority = 5                     # the higher wins a customer on the same day
    category = "marketing"           # of its sends: service | legal | marketing | survey
    reentry = "once"                 # once per customer, or "every" trigger event
    exit_on = ["account_closed"]     # events that end a running instance

    [[conditions]]                   # all must hold when the trigger comes (a segment)
    attribute = "segment"            # the customer's attribute (from events' attributes)
    in = ["retail"]                  # or: equals, not_in, at_least, at_most, exists
    [[conditions]]
    event = "complaint_registered"   # the customer's history
    within_days = 90
    absent = true                    # or: count_at_least = 2

    [[steps]]                        # run in order unless a step says where next
    id = "no-deposit-yet"
    type = "wait"                    # wait | send | branch | exit
    days = 14                        # and/or hours, minutes; from the trigger's occurred-at
    unless = ["first_deposit"]       # any since the trigger: the journey exits

    [[steps]]
    id = "follow-up"
    type = "send"                    # composes through the normal path (a bulk job record)
    layout = "welcome-letter"        # layout_version = "2.0.0", channels = ["email"]
    [steps.data]                     # the layout's data; "$trigger.data.x", "$customer.x",
    customer = "$customer.recipient" # "$trigger.customer_id", "$trigger.occurred_date"

    [[steps]]
    id = "outcome"
    type = "branch"                  # after days/hours: the first outcome that happened
    on = "follow-up"                 # responded > clicked > bounced > delivered > otherwise
    days = 3
    bounced = "letter"               # a step id, or "exit"; "bounced": the send did not
                                     # reach (bounced, failed, expired, suppressed); a send
                                     # a `bounced` branch reacts to gets no implicit fallback
    otherwise = "exit"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
CATEGORIES = ("service", "legal", "marketing", "survey")
STEP_TYPES = ("wait", "send", "branch", "exit")
OUTCOMES = ("responded", "clicked", "bounced", "delivered")  # in the order they are tried
EXIT = "exit"
CONDITION_OPS = ("equals", "in", "not_in", "at_least", "at_most", "exists")


class JourneyError(ValueError):
    """A journey file that cannot be used; the message names the file and every problem."""

    def __init__(self, path: Path | str, problems: Sequence[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str = ""  # on a customer attribute, or
    event: str = ""  # on the customer's history
    op: str = ""
    value: Any = None
    within_days: float | None = None
    absent: bool = False
    count_at_least: int = 1


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: str
    next: str = ""  # "" : the following step (the end: exit)
    wait: timedelta = timedelta(0)  # wait, branch
    unless: tuple[str, ...] = ()  # wait
    layout: str = ""  # send
    layout_version: str | None = None
    channels: tuple[str, ...] = ()
    category: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    on: str = ""  # branch
    outcomes: Mapping[str, str] = field(default_factory=dict)  # outcome -> step id
    otherwise: str = EXIT


@dataclass(frozen=True, slots=True)
class Journey:
    tenant: str
    name: str
    version: int
    trigger: str
    steps: tuple[Step, ...]
    priority: int = 0
    category: str = "service"
    reentry: str = "once"
    exit_on: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    description: str = ""
    path: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def reacts_to_bounce(self, step: Step) -> bool:
        """Whether a branch of this journey reacts to send step `step` bouncing: then the
        journey owns that reaction, and the step's document gets no implicit fallback."""
        return any(s.type == "branch" and s.on == step.id and "bounced" in s.outcomes
                   for s in self.steps)

    def after(self, step: Step) -> str:
        """The id of the step that follows `step` ("exit" after the last)."""
        if step.next:
            return step.next
        position = self.steps.index(step)
        return self.steps[position + 1].id if position + 1 < len(self.steps) else EXIT

    def category_of(self, step: Step) -> str:
        return step.category or self.category


def _duration(spec: Mapping[str, Any], where: str, problems: list[str]) -> timedelta:
    total = timedelta(0)
    for unit in ("days", "hours", "minutes"):
        if unit in spec:
            value = spec[unit]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                problems.append(f"{where}.{unit}: a number >= 0, not {value!r}")
            else:
                total += timedelta(**{unit: value})
    return total


def _strings(value: Any, where: str, problems: list[str], known: Callable[[str], bool],
             what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: a list of {what}s")
        return ()
    for v in value:
        if not known(v):
            problems.append(f"{where}: unknown {what} {v!r}")
    return tuple(value)


def _condition(spec: Any, where: str, problems: list[str],
               event_known: Callable[[str], bool]) -> Condition | None:
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: a table")
        return None
    unknown = set(spec) - {"attribute", "event", "within_days", "absent", "count_at_least",
                           *CONDITION_OPS}
    if unknown:
        problems.append(f"{where}: unknown key(s) {sorted(unknown)}")
    if "attribute" in spec:
        ops = [op for op in CONDITION_OPS if op in spec]
        if len(ops) != 1:
            problems.append(f"{where}: an attribute condition needs exactly one of "
                            f"{', '.join(CONDITION_OPS)}")
            return None
        op = ops[0]
        if op in ("in", "not_in") and not isinstance(spec[op], list):
            problems.append(f"{where}.{op}: a list")
        if op in ("at_least", "at_most") and (not isinstance(spec[op], (int, float))
                                              or isinstance(spec[op], bool)):
            problems.append(f"{where}.{op}: a number")
        return Condition(attribute=str(spec["attribute"]), op=op, value=spec[op])
    if "event" in spec:
        if not event_known(str(spec["event"])):
            problems.append(f"{where}.event: unknown event type {spec['event']!r}")
        within = spec.get("within_days")
        if within is not None and (not isinstance(within, (int, float)) or within <= 0):
            problems.append(f"{where}.within_days: a number > 0")
        count = spec.get("count_at_least", 1)
        if not isinstance(count, int) or count < 1:
            problems.append(f"{where}.count_at_least: an integer >= 1")
        return Condition(event=str(spec["event"]), within_days=within,
                         absent=bool(spec.get("absent", False)), count_at_least=count)
    problems.append(f"{where}: needs `attribute` or `event`")
    return None


STEP_KEYS = {
    "wait": {"days", "hours", "minutes", "unless"},
    "send": {"layout", "layout_version", "channels", "category", "data"},
    "branch": {"days", "hours", "minutes", "on", "otherwise", *OUTCOMES},
    "exit": set(),
}


def _step(spec: Any, where: str, problems: list[str], event_known: Callable[[str], bool],
          layout_known: Callable[[str, str | None], str | None]) -> Step | None:
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: a table")
        return None
    step_id, kind = spec.get("id"), spec.get("type")
    if not isinstance(step_id, str) or not NAME.match(step_id) or step_id == EXIT:
        problems.append(f"{where}.id: [a-z0-9_-]{{1,100}} (and not 'exit'), not {step_id!r}")
        step_id = f"?{where}"
    if kind not in STEP_TYPES:
        problems.append(f"{where}.type: one of {', '.join(STEP_TYPES)}, not {kind!r}")
        return None
    unknown = set(spec) - STEP_KEYS[kind] - {"id", "type", "next"}
    if unknown:
        problems.append(f"{where}: unknown key(s) for a {kind} step: {sorted(unknown)}")
    values: dict[str, Any] = {"id": step_id, "type": kind, "next": str(spec.get("next", ""))}
    if kind in ("wait", "branch"):
        values["wait"] = _duration(spec, where, problems)
    if kind == "wait":
        values["unless"] = _strings(spec.get("unless", []), f"{where}.unless", problems,
                                    event_known, "event type")
    elif kind == "send":
        layout = spec.get("layout")
        version = spec.get("layout_version")
        if not isinstance(layout, str):
            problems.append(f"{where}.layout: required, a layout id")
        elif (why := layout_known(layout, version)) is not None:
            problems.append(f"{where}.layout: {why}")
        channels = spec.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            problems.append(f"{where}.channels: a list of channel names")
            channels = []
        category = spec.get("category", "")
        if category and category not in CATEGORIES:
            problems.append(f"{where}.category: one of {', '.join(CATEGORIES)}")
        data = spec.get("data", {})
        if not isinstance(data, Mapping):
            problems.append(f"{where}.data: a table (the layout's data)")
            data = {}
        values.update(layout=layout or "", layout_version=version, channels=tuple(channels),
                      category=category, data=data)
    elif kind == "branch":
        values["on"] = str(spec.get("on", ""))
        values["outcomes"] = {o: str(spec[o]) for o in OUTCOMES if o in spec}
        values["otherwise"] = str(spec.get("otherwise", EXIT))
        if not values["outcomes"]:
            problems.append(f"{where}: a branch needs at least one of {', '.join(OUTCOMES)}")
    return Step(**values)


def parse_journey(doc: Mapping[str, Any], *, tenant: str, path: Path | str = "",
                  name: str | None = None, version: int | None = None,
                  event_known: Callable[[str], bool] = lambda _: True,
                  layout_known: Callable[[str, str | None], str | None] = lambda *_: None
                  ) -> Journey:
    """A parsed TOML document -> Journey, or JourneyError listing every problem.
    `layout_known(id, version)` -> None if the layout exists, else why not."""
    problems: list[str] = []
    unknown = set(doc) - {"name", "version", "description", "trigger", "priority", "category",
                          "reentry", "exit_on", "conditions", "steps"}
    if unknown:
        problems.append(f"unknown key(s) {sorted(unknown)}")
    if name is not None and doc.get("name") != name:
        problems.append(f"name: must be {name!r} (the folder's name), not {doc.get('name')!r}")
    if version is not None and doc.get("version") != version:
        problems.append(f"version: must be {version} (the file's name), "
                        f"not {doc.get('version')!r}")
    trigger = doc.get("trigger")
    if not isinstance(trigger, str) or not event_known(trigger):
        problems.append(f"trigger: unknown event type {trigger!r}")
    priority = doc.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems.append(f"priority: an integer, not {priority!r}")
    category = doc.get("category", "service")
    if category not in CATEGORIES:
        problems.append(f"category: one of {', '.join(CATEGORIES)}, not {category!r}")
    reentry = doc.get("reentry", "once")
    if reentry not in ("once", "every"):
        problems.append(f"reentry: 'once' or 'every', not {reentry!r}")
    exit_on = _strings(doc.get("exit_on", []), "exit_on", problems, event_known, "event type")
    conditions = []
    for n, spec in enumerate(doc.get("conditions", [])):
        if (c := _condition(spec, f"conditions[{n}]", problems, event_known)) is not None:
            conditions.append(c)
    steps: list[Step] = []
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("steps: at least one [[steps]]")
        raw_steps = []
    for n, spec in enumerate(raw_steps):
        if (s := _step(spec, f"steps[{n}]", problems, event_known, layout_known)) is not None:
            steps.append(s)
    ids = [s.id for s in steps]
    for step_id in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"steps: id {step_id!r} is used twice")
    targets = set(ids) | {EXIT}
    for n, s in enumerate(steps):
        for what, target in [("next", s.next), ("otherwise", s.otherwise),
                             *s.outcomes.items()]:
            if target and target not in targets:
                problems.append(f"steps[{n}].{what}: no step {target!r}")
        if s.type == "branch":
            sent = [x for x in steps if x.id == s.on]
            if not sent or sent[0].type != "send":
                problems.append(f"steps[{n}].on: must name a send step, not {s.on!r}")
    if problems:
        raise JourneyError(path, problems)
    return Journey(
        tenant=tenant, name=str(doc["name"]), version=int(doc["version"]), trigger=trigger,
        steps=tuple(steps), priority=priority, category=category, reentry=reentry,
        exit_on=exit_on, conditions=tuple(conditions), path=str(path),
        description=str(doc.get("description", "")),
    )


def load_journey(path: Path, *, tenant: str,
                 event_known: Callable[[str], bool] = lambda _: True,
                 layout_known: Callable[[str, str | None], str | None] = lambda *_: None
                 ) -> Journey:
    if not path.stem.isdigit() or int(path.stem) < 1:
        raise JourneyError(path, ["the file name must be the version: a positive integer "
                                  "(1.toml, 2.toml, ...)"])
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise JourneyError(path, [f"not valid TOML: {exc}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyError(path, [f"cannot be read: {exc}"]) from exc
    return parse_journey(doc, tenant=tenant, path=path, name=path.parent.name,
                         version=int(path.stem), event_known=event_known,
                         layout_known=layout_known)


class JourneyCatalog:
    """Every journey file under `root` (`<tenant>/<name>/<version>.toml`), all checked at
    start: one bad file stops the start with its JourneyError (never a journey that half
    works)."""

    def __init__(self, root: Path | None, *, event_known: Callable[[str], bool] = lambda _: True,
                 layout_known: Callable[[str, str | None], str | None] = lambda *_: None):
        self.root = root
        self._all: dict[tuple[str, str, int], Journey] = {}
        if root is None or not root.exists():
            return
        for path in sorted(root.glob("*/*/*.toml")):
            tenant = path.parent.parent.name
            journey = load_journey(path, tenant=tenant, event_known=event_known,
                                   layout_known=layout_known)
            self._all[(tenant, journey.name, journey.version)] = journey
        latest: dict[tuple[str, str], Journey] = {}
        for (tenant, name, _), journey in sorted(self._all.items()):
            latest[(tenant, name)] = journey
        self._by_trigger: dict[tuple[str, str], list[Journey]] = {}
        self._ending: dict[str, set[str]] = {}
        for journey in latest.values():
            self._by_trigger.setdefault((journey.tenant, journey.trigger), []).append(journey)
        for journey in self._all.values():  # running instances may be on any version
            self._ending.setdefault(journey.tenant, set()).update(
                journey.exit_on, *(s.unless for s in journey.steps))

    def get(self, tenant: str, name: str, version: int) -> Journey | None:
        return self._all.get((tenant, name, version))

    def triggered_by(self, tenant: str, event_type: str) -> list[Journey]:
        """The newest version of each journey of `tenant` that `event_type` starts."""
        return list(getattr(self, "_by_trigger", {}).get((tenant, event_type), ()))

    def ending(self, tenant: str) -> set[str]:
        """The event types that can end an instance of `tenant` (exit_on, wait unless)."""
        return getattr(self, "_ending", {}).get(tenant, set())

    def all(self) -> list[Journey]:
        return list(self._all.values())
