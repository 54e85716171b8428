"""`verifymock fuzz`'s hooks: about half the well-formed identifiers become the seeded ones; malformed ones stay."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
import pytest

from verifymock import fuzz_hooks
from verifymock.config import Config
from verifymock.fuzz_hooks import SEEDED, map_body, map_path_parameters, seed
from verifymock.server import serve_in_thread


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> str:
    profile = str(uuid.uuid4())
    monkeypatch.setenv(SEEDED["profile"], profile)
    monkeypatch.setenv(SEEDED["number"], fuzz_hooks.NUMBER)
    monkeypatch.setenv(SEEDED["verification"], "seeded-verification")
    return profile


def test_fuzz_hooks_point_about_half_the_well_formed_values_at_the_seeded_data(seeded: str) -> None:
    bodies = [{"verify_profile_id": str(uuid.UUID(int=i * 7919)), "phone_number": "+13035551234"} for i in range(200)]
    swapped = [map_body(None, body)["verify_profile_id"] == seeded for body in bodies]
    assert 60 <= sum(swapped) <= 140
    numbers = [{"phone_number": f"+1303555{i:04d}"} for i in range(200)]
    moved = [map_path_parameters(None, n)["phone_number"] == fuzz_hooks.NUMBER for n in numbers]
    assert 60 <= sum(moved) <= 140
    stories = [{"subject_id": f"story-{i}"} for i in range(200)]
    told = [map_path_parameters(None, s)["subject_id"] == "seeded-verification" for s in stories]
    assert 60 <= sum(told) <= 140
    assert map_path_parameters(None, {"subject_id": "x" * 201}) == {"subject_id": "x" * 201}  # too long: as drawn
    # the same value is always treated alike, so a case replays the same
    assert map_body(None, dict(bodies[0])) == map_body(None, dict(bodies[0]))


def test_fuzz_hooks_give_a_check_by_number_the_seeded_profile_every_time(seeded: str) -> None:
    """Its number is swapped half the time by another hook; with the profile swapped only half the time too, three
    cases in four reached nothing but a 404."""
    check = SimpleNamespace(operation=SimpleNamespace(path="/v2" + fuzz_hooks.BY_NUMBER))
    bodies = [{"verify_profile_id": str(uuid.UUID(int=i * 7919)), "code": "12345"} for i in range(50)]
    assert all(map_body(check, body)["verify_profile_id"] == seeded for body in bodies)
    assert map_body(check, {"verify_profile_id": "not-a-uuid"}) == {"verify_profile_id": "not-a-uuid"}
    other = SimpleNamespace(operation=SimpleNamespace(path="/v2/verifications/sms"))
    assert sum(map_body(other, body)["verify_profile_id"] == seeded for body in bodies) < 50


@pytest.mark.parametrize("malformed", ["not-a-uuid", 42, None, ["a"]])
def test_fuzz_hooks_leave_malformed_values_as_generated(seeded: str, malformed: object) -> None:
    assert map_body(None, {"verify_profile_id": malformed}) == {"verify_profile_id": malformed}
    assert map_path_parameters(None, {"phone_number": malformed}) == {"phone_number": malformed}
    assert map_body(None, ["not", "an", "object"]) == ["not", "an", "object"]


def test_fuzz_hooks_change_nothing_without_seeded_data(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SEEDED.values():
        monkeypatch.delenv(name, raising=False)
    body = {"verify_profile_id": str(uuid.uuid4())}
    assert map_body(None, dict(body)) == body


def test_fuzz_seed_gives_up_quietly_where_nothing_answers() -> None:
    assert seed("http://127.0.0.1:9", "Bearer x") == {}  # nothing listens there


def test_fuzz_seed_makes_a_profile_a_verification_and_a_ringing_call() -> None:
    with serve_in_thread(Config(port=0, clock="manual")) as server:
        made = seed(server.url, "Bearer k")
        profile_id = made[SEEDED["profile"]]
        profile = httpx.get(f"{server.url}/v2/verify_profiles/{profile_id}", headers={"Authorization": "Bearer k"})
        handset = httpx.get(f"{server.url}/_mock/handsets/{made[SEEDED['number']]}").json()
        story = httpx.get(f"{server.url}/_mock/timeline/{made[SEEDED['verification']]}")
    assert profile.status_code == 200 and story.status_code == 200
    assert [c["state"] for c in handset["calls"]] == ["ringing"] and handset["messages"]
