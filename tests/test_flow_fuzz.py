"""Every form of every flow under hostile values: a form error or a working entry, never a crash.

Each example fills one form through Home Assistant's flow manager, every field either a good
value or a hostile one (NaN, infinities, -0, huge numbers and texts, empty, whitespace, control
characters, lone surrogates, non-ASCII, wrong types). What may come back:

- the schema's own refusal (`InvalidData`, HTTP 400 with the field named: the frontend shows it
  on the field), for values Home Assistant's selectors already turn away;
- the same form again with a translated error on a field of the form or on the form itself;
- the next step; and when the flow ends, an entry that sets up (`LOADED`), never one in
  `setup_error`.

Anything else (an exception, a form without errors, an untranslated error) fails. Names resolve
to 127.0.0.1 here (the internet's DNS is the one thing not real), so a host name the form takes
is tried against the test's own broker or a refused port. `MESHBOT_FLOW_EXAMPLES` sets the
examples per form (`bench/flow_fuzz.py` runs many more).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import socket
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_LATITUDE,
    CONF_LONGITUDE,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.meshbot.const import (
    CONF_ACTIVE_MINUTES,
    CONF_ALERT_DISTANCE_KM,
    CONF_ALERT_MINUTES,
    CONF_ALERT_STRIKES,
    CONF_CA_CERT,
    CONF_CHANNEL_KEYS,
    CONF_DEVICE,
    CONF_FOLLOW_ENTITY,
    CONF_LIGHTNING,
    CONF_LINK_MAX_AGE_HOURS,
    CONF_LOCATION,
    CONF_LOCATION_MODE,
    CONF_MAP_STRIKES,
    CONF_MAX_TRACKED_NODES,
    CONF_MESH,
    CONF_MESH_ALERT_TARGETS,
    CONF_MESH_TOPICS,
    CONF_NODE_MAX_AGE_HOURS,
    CONF_NODE_POLICY,
    CONF_NODE_RADIUS_KM,
    CONF_QUIET_MINUTES,
    CONF_RADIO,
    CONF_RADIUS_KM,
    CONF_TLS,
    CONF_TRACK_POSITIONS,
    CONF_TRACKED_NODES,
    CONF_VERIFY_TLS,
    CONF_WINDOW_MINUTES,
    DOMAIN,
    LOCATION_ENTITY,
    LOCATION_FIXED,
    LOCATION_HOME,
    NODE_POLICIES,
    POLICY_CHOSEN,
)
from meshbot_dev.entries import broker_section, entry_for, radio_section
from meshbot_dev.fake_node import FakeNode
from meshbot_dev.mosquitto import MosquittoBroker, refused_port

EXAMPLES = int(os.environ.get("MESHBOT_FLOW_EXAMPLES", "1150"))
CHECK_SECONDS = 0.5
TRANSLATIONS = Path(__file__).parent.parent / "custom_components" / DOMAIN / "translations"

# Values Home Assistant's selectors let through, and values they turn away.
HOSTILE_TEXTS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "\ud800",
    "a" * 70_000,
    "é" * 40_000,
    "..",
    "-",
    "a..b",
    "-a-",
    "a" * 64,
    ("a" * 63 + ".") * 5,
    # IP literals skip the resolver; the harness lets tests reach 127.0.0.1 only.
    "[127.0.0.1]",
    "/",
    "/dev/\x00",
    "+",
    "#",
    "msh/+/#",
    "NaN",
    "!zzzzzzzz",
    "channel:8",
    "LongFast = 00112233445566778899aabbccddeeff",
    "LongFast = " + "A" * 32,
    "Long\x00Fast = AQ==",
]
HOSTILE_NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.5,
    1e-300,
    1e308,
    -1e308,
    2**63,
    -1,
    0,
    65535.5,
    "NaN",
    "inf",
    "1e309",
]
texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(max_size=40),
    st.text(st.characters(categories=["Cc", "Cs", "Co", "Zs", "So", "Mn"]), max_size=12),
)
numbers = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1, max_value=70_000),
    st.integers(min_value=-(2**70), max_value=2**70),
)
anything = st.one_of(
    texts,
    numbers,
    st.none(),
    st.booleans(),
    st.lists(texts, max_size=4),
    st.dictionaries(texts, numbers, max_size=3),
)
locations = st.one_of(
    st.fixed_dictionaries({CONF_LATITUDE: numbers, CONF_LONGITUDE: numbers}),
    st.fixed_dictionaries(
        {
            CONF_LATITUDE: st.floats(-90, 90),
            CONF_LONGITUDE: st.floats(-180, 180),
            "radius": numbers,
        }
    ),
)
text_lists = st.lists(texts, max_size=5)
entity_ids = st.one_of(
    st.from_regex(r"\A[a-z_]{1,12}\.[a-z0-9_]{1,12}\Z"),
    st.from_regex(r"\A(person|zone|device_tracker)\.[a-z0-9_]{0,12}\Z"),
    st.uuids().map(lambda uuid: uuid.hex),
)
LOCATION_MODES = (LOCATION_HOME, LOCATION_FIXED, LOCATION_ENTITY)
LINKS = (CONF_RADIO, CONF_MESH, CONF_LIGHTNING)


@dataclass(frozen=True)
class Form:
    """A form of a flow: how to open it, its fields with good values, the hostile values."""

    open: Callable[[HomeAssistant, Context], Awaitable[ConfigFlowResult]]
    good: Callable[[Context], dict[str, Any]]
    hostile: dict[str, st.SearchStrategy[Any]]


@dataclass
class Context:
    """What a form's good values point at: the test's broker and a port that refuses."""

    broker_port: int
    refused: int
    radio_port: int = 0
    serial_device: str = ""
    entry_id: str = ""


async def user_step(hass: HomeAssistant, step: str) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})


async def lightning_then(hass: HomeAssistant, context: Context, mode: str) -> ConfigFlowResult:
    result = await user_step(hass, "lightning")
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {**lightning_good(context), CONF_LOCATION_MODE: mode}
    )


def lightning_good(context: Context) -> dict[str, Any]:
    return {
        CONF_LOCATION_MODE: LOCATION_HOME,
        CONF_RADIUS_KM: 50,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: context.broker_port,
    }


async def options_form(hass: HomeAssistant, context: Context) -> ConfigFlowResult:
    return await hass.config_entries.options.async_init(context.entry_id)


async def reauth_form(hass: HomeAssistant, context: Context) -> ConfigFlowResult:
    entry = hass.config_entries.async_get_entry(context.entry_id)
    assert entry is not None
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_REAUTH, "entry_id": entry.entry_id},
        data=dict(entry.data),
    )


async def remove_form(hass: HomeAssistant, context: Context) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": context.entry_id}
    )
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "remove_links"}
    )


OPTIONS_NUMBERS = {
    CONF_RADIUS_KM: 50,
    CONF_WINDOW_MINUTES: 30,
    CONF_ALERT_DISTANCE_KM: 20,
    CONF_ALERT_STRIKES: 3,
    CONF_ALERT_MINUTES: 10,
    CONF_QUIET_MINUTES: 20,
    CONF_MAP_STRIKES: 20,
    CONF_NODE_RADIUS_KM: 25,
    CONF_MAX_TRACKED_NODES: 50,
    CONF_ACTIVE_MINUTES: 120,
    CONF_NODE_MAX_AGE_HOURS: 72,
    CONF_LINK_MAX_AGE_HOURS: 24,
}

FORMS: dict[str, Form] = {
    "radio_tcp": Form(
        open=lambda hass, _context: user_step(hass, "radio_tcp"),
        good=lambda context: {CONF_HOST: "127.0.0.1", CONF_PORT: context.radio_port},
        hostile={CONF_HOST: texts, CONF_PORT: numbers},
    ),
    "radio_serial": Form(
        open=lambda hass, _context: user_step(hass, "radio_serial"),
        good=lambda context: {CONF_DEVICE: context.serial_device},
        hostile={CONF_DEVICE: texts},
    ),
    "mesh": Form(
        open=lambda hass, _context: user_step(hass, "mesh"),
        good=lambda context: {
            CONF_HOST: "127.0.0.1",
            CONF_PORT: context.broker_port,
            CONF_USERNAME: "meshdev",
            CONF_PASSWORD: "large4cats",
            CONF_TLS: False,
            CONF_VERIFY_TLS: True,
            CONF_MESH_TOPICS: "msh/US",
            CONF_CHANNEL_KEYS: "LongFast = AQ==",
        },
        hostile={
            CONF_HOST: texts,
            CONF_PORT: numbers,
            CONF_USERNAME: texts,
            CONF_PASSWORD: texts,
            CONF_TLS: st.booleans(),
            CONF_VERIFY_TLS: st.booleans(),
            CONF_CA_CERT: texts,
            CONF_MESH_TOPICS: texts,
            CONF_CHANNEL_KEYS: texts,
        },
    ),
    "lightning": Form(
        open=lambda hass, _context: user_step(hass, "lightning"),
        good=lightning_good,
        hostile={
            CONF_LOCATION_MODE: st.one_of(st.sampled_from(LOCATION_MODES), texts),
            CONF_RADIUS_KM: numbers,
            CONF_HOST: texts,
            CONF_PORT: numbers,
        },
    ),
    "lightning_location": Form(
        open=lambda hass, context: lightning_then(hass, context, LOCATION_FIXED),
        good=lambda _context: {CONF_LOCATION: {CONF_LATITUDE: 48.85, CONF_LONGITUDE: 2.35}},
        hostile={CONF_LOCATION: st.one_of(locations, anything)},
    ),
    "lightning_entity": Form(
        open=lambda hass, context: lightning_then(hass, context, LOCATION_ENTITY),
        good=lambda _context: {CONF_FOLLOW_ENTITY: "zone.home"},
        hostile={CONF_FOLLOW_ENTITY: st.one_of(entity_ids, texts)},
    ),
    "reauth_confirm": Form(
        open=reauth_form,
        good=lambda _context: {CONF_USERNAME: "meshdev", CONF_PASSWORD: "large4cats"},
        hostile={CONF_USERNAME: texts, CONF_PASSWORD: texts},
    ),
    "remove_links": Form(
        open=remove_form,
        good=lambda _context: {"links": ["lightning"]},
        hostile={"links": st.one_of(st.lists(st.sampled_from(LINKS)), text_lists)},
    ),
    "init": Form(
        open=options_form,
        good=lambda _context: {
            CONF_MESH_TOPICS: "msh/US",
            CONF_CHANNEL_KEYS: "LongFast = AQ==",
            CONF_MESH_ALERT_TARGETS: ["channel:0"],
            CONF_NODE_POLICY: POLICY_CHOSEN,
            CONF_TRACKED_NODES: ["!a1b2c3d4"],
            CONF_TRACK_POSITIONS: True,
            **OPTIONS_NUMBERS,
        },
        hostile={
            CONF_MESH_TOPICS: texts,
            CONF_CHANNEL_KEYS: texts,
            CONF_MESH_ALERT_TARGETS: text_lists,
            CONF_NODE_POLICY: st.one_of(st.sampled_from(NODE_POLICIES), texts),
            CONF_TRACKED_NODES: text_lists,
            CONF_TRACK_POSITIONS: st.booleans(),
            **dict.fromkeys(OPTIONS_NUMBERS, numbers),
        },
    ),
}


def error_texts(flow: str) -> set[str]:
    """Return the errors of a flow ("config" or "options") with a text in every language."""
    keys: set[str] | None = None
    for path in TRANSLATIONS.glob("*.json"):
        found = set(json.loads(path.read_text(encoding="utf-8"))[flow]["error"])
        keys = found if keys is None else keys & found
    assert keys, "no translations found"
    return keys


@st.composite
def inputs(draw: st.DrawFn, form: Form, context: Context) -> dict[str, Any]:
    """Return a form filled mostly with good values: one or two hostile, now and then a field
    of the wrong type (for the schema to refuse) or left out.
    """
    good = form.good(context)
    rolls = max(2 * len(form.hostile) + 2, 6)
    filled: dict[str, Any] = {}
    for key, hostile in form.hostile.items():
        roll = draw(st.integers(0, rolls - 1))
        if roll == 0:
            filled[key] = draw(anything)
        elif roll == 1:
            continue
        elif roll <= 4:
            filled[key] = draw(hostile)
        elif key in good:
            filled[key] = good[key]
    return filled


class FormDriver:
    """Keep one flow open at the form; open a new one when an example moved it on."""

    def __init__(self, hass: HomeAssistant, name: str, context: Context) -> None:
        self.hass = hass
        self.name = name
        self.form = FORMS[name]
        self.context = context
        self.result: ConfigFlowResult | None = None
        self.known_errors = error_texts("options" if name == "init" else "config")
        self.outcomes: dict[str, int] = {}

    async def attempt(self, user_input: dict[str, Any]) -> None:
        """Submit one filled form and check what came back."""
        if self.result is None:
            self.result = await self.form.open(self.hass, self.context)
            assert self.result["type"] is FlowResultType.FORM, self.result
            assert self.result["step_id"] == self.name, self.result
        flows = (
            self.hass.config_entries.options
            if self.name == "init"
            else self.hass.config_entries.flow
        )
        fields = {str(key) for key in self.result["data_schema"].schema}
        try:
            result = await flows.async_configure(self.result["flow_id"], user_input)
        except InvalidData as err:
            assert set(err.schema_errors) <= fields | {"base"}, err.schema_errors
            self._count("refused by the schema")
            return
        if result["type"] is FlowResultType.FORM and result["step_id"] == self.name:
            errors = result["errors"] or {}
            assert errors, f"the same form came back without an error for {user_input!r}"
            assert set(errors) <= fields | {"base"}, errors
            assert set(errors.values()) <= self.known_errors - {"unknown"}, errors
            self._count("form error")
            return
        self.result = None
        await self._check_accepted(result)

    async def _check_accepted(self, result: ConfigFlowResult) -> None:
        """Follow an accepted form to its end: the entry it makes must set up."""
        hass = self.hass
        if result["type"] is FlowResultType.FORM:
            # The lightning step goes on to its location step: accepted.
            self._count("next step")
            hass.config_entries.flow.async_abort(result["flow_id"])
            return
        if result["type"] is FlowResultType.MENU and self.name != "remove_links":
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"next_step_id": "finish"}
            )
            assert result["type"] is FlowResultType.CREATE_ENTRY, result
            entry = result["result"]
            await hass.async_block_till_done()
            assert entry.state is ConfigEntryState.LOADED, entry.state
            await hass.config_entries.async_remove(entry.entry_id)
            self._count("entry created")
            return
        if result["type"] is FlowResultType.MENU:
            hass.config_entries.flow.async_abort(result["flow_id"])
            self._count("links removed")
            return
        entry = hass.config_entries.async_get_entry(self.context.entry_id)
        assert entry is not None
        if result["type"] is FlowResultType.ABORT:
            assert result["reason"] == "reauth_successful", result
        else:
            assert result["type"] is FlowResultType.CREATE_ENTRY, result
        # Stored: the entry must set up with what was stored (reauth reloads it by itself).
        await hass.async_block_till_done()
        if entry.state is ConfigEntryState.NOT_LOADED:
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED, entry.state
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        self._count("stored")

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


@pytest.fixture
def any_name_is_local(socket_enabled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve every host name to 127.0.0.1: the names a form takes must not reach the internet."""
    real = socket.getaddrinfo

    def local(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local)


# Links reconnecting on the loop's thread draw jitter from `random` while Hypothesis draws an
# example on the executor's: Hypothesis reads that as a strategy using `random`.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("name", list(FORMS))
async def test_every_form_survives_hostile_values(
    hass: HomeAssistant,
    broker: MosquittoBroker,
    any_name_is_local: None,
    name: str,
) -> None:
    context = Context(broker_port=broker.port, refused=refused_port())
    radio = FakeNode()
    if name == "radio_tcp":
        await radio.start_tcp()
        context.radio_port = radio.port
    if name == "radio_serial":
        radio.start_pty()
        context.serial_device = radio.device
    if name in ("init", "remove_links", "reauth_confirm"):
        # Links the user flow never tries (refused ports), so they never collide with it.
        entry = entry_for(
            radio=radio_section(context.refused),
            mesh=broker_section(broker.port),
            lightning=broker_section(refused_port()),
        )
        entry.add_to_hass(hass)
        context.entry_id = entry.entry_id
    driver = FormDriver(hass, name, context)
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(user_input=inputs(FORMS[name], context))
    def example(user_input: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(driver.attempt(user_input), loop).result()

    try:
        with patch("custom_components.meshbot.flows.base.VALIDATION_TIMEOUT", CHECK_SECONDS):
            await hass.async_add_executor_job(example)
    finally:
        await radio.stop()
    assert sum(driver.outcomes.values()) >= EXAMPLES, driver.outcomes
    # The good values are among the examples: each form was seen to accept as well as refuse.
    assert set(driver.outcomes) - {"refused by the schema", "form error"}, driver.outcomes
