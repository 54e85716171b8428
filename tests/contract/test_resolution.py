"""Every operation of every bundled spec resolves to exactly one handler, or is knowingly generic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, write_spec
from verifymock.errors import HandlerError
from verifymock.resolver import generic_by_declaration, resolve_spec, snake_case
from verifymock.specs import load_spec, spec_files

BUNDLED = spec_files([REPO / "specs"])
HANDLERS = [REPO / "handlers"]


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_resolution_every_bundled_operation_is_handled_or_knowingly_generic(path: Path) -> None:
    spec = load_spec(path)
    resolutions = resolve_spec(spec, HANDLERS)
    generic = generic_by_declaration(spec, HANDLERS)
    for operation_id, resolution in resolutions.items():
        handled = resolution.handler is not None
        assert handled != (operation_id in generic), (
            f"{operation_id}: handled={handled}, generic={operation_id in generic}"
        )


def test_resolution_bundled_specs_exist() -> None:
    assert {p.stem for p in BUNDLED} >= {"control", "telnyx_verify"}


def test_resolution_snake_case_follows_operation_ids() -> None:
    assert snake_case("CreateVerificationCall") == "create_verification_call"
    assert snake_case("ListVerifications") == "list_verifications"
    assert snake_case("GetHTTPStatus") == "get_http_status"
    assert snake_case("post_v1_verify_call") == "post_v1_verify_call"


def _spec(folder: Path) -> Path:
    return write_spec(
        folder,
        "thing",
        {
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "paths": {"/a": {"get": {"operationId": "GetA", "responses": {"200": {"description": "ok"}}}}},
        },
    )


def test_resolution_refuses_an_operation_both_handled_and_generic(tmp_path: Path) -> None:
    (tmp_path / "thing.py").write_text("GENERIC = {'GetA'}\ndef get_a():\n    return None\n")
    with pytest.raises(HandlerError, match="both handled and listed in GENERIC"):
        resolve_spec(load_spec(_spec(tmp_path)), [tmp_path])


def test_resolution_refuses_generic_names_the_spec_lacks(tmp_path: Path) -> None:
    (tmp_path / "thing.py").write_text("GENERIC = {'GetB'}\n")
    with pytest.raises(HandlerError, match="GetB"):
        resolve_spec(load_spec(_spec(tmp_path)), [tmp_path])


def test_resolution_user_handlers_come_first(tmp_path: Path) -> None:
    user, bundled = tmp_path / "user", tmp_path / "bundled"
    user.mkdir(), bundled.mkdir()
    (user / "thing.py").write_text("def get_a():\n    return 'user'\n")
    (bundled / "thing.py").write_text("def get_a():\n    return 'bundled'\n")
    resolution = resolve_spec(load_spec(_spec(tmp_path)), [user, bundled])["GetA"]
    assert resolution.handler is not None and resolution.handler() == "user"
