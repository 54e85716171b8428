"""Request validation plugged into connexion, raising `ApiError` data instead of RFC 7807 strings.

connexion finds the operation, parses parameters and calls these validators; they say precisely what is wrong
(which problem, which JSON pointer or parameter) so each vendor's renderer can word it in that vendor's envelope.
"""

from __future__ import annotations

import codecs
import re
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import jsonschema_rs
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, FormDataValidator, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match
from starlette.types import Scope

from verifymock import jsonio
from verifymock.convert import pointer
from verifymock.errors import ApiError, Problem

# Every format jsonschema can check (uuid, date-time, email, ipv4, ipv6, uri, ...), not only Draft 4's few.
FORMATS = FormatChecker()
_ECMA_REGEX = jsonschema_rs.Draft202012Validator({"type": "string", "format": "regex"}, validate_formats=True)


@FORMATS.checks("regex")  # type: ignore[untyped-decorator]
def _is_ecma_regex(value: object) -> bool:
    """JSON Schema's `regex` is an ECMA-262 pattern. jsonschema checks it with Python's `re`, which takes what ECMA
    refuses (a lone `}`, say), so a request the spec refuses would be accepted; jsonschema-rs checks it as ECMA."""
    return not isinstance(value, str) or bool(_ECMA_REGEX.is_valid(value))


_EMPTY: dict[str, Any] = {}
_QUERY_NAME = re.compile(r"([^\[\]]+)(?:\[([^\[\]]+)\])?")  # name, or name[field] for a deepObject
_INTEGER = re.compile(r"-?[0-9]+")
# connexion keeps one schema object per operation for the life of the app; holding it here pins its id.
_compiled: dict[int, tuple[dict[str, Any], Any]] = {}


# JSON Schema since draft 6 (and so OpenAPI 3.1) counts 5.0 as an integer; Draft 4 did not. Real JSON parsers
# do not tell 5.0 from 5 either, so the view validates types the 3.1 way.
_patterns: dict[str, Any] = {}


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    """`pattern` as JSON Schema means it, an ECMA-262 search. Python's `re` lets `$` match before a final newline,
    so a phone number with a newline after it passed `^...$` patterns here while the fast path and the self-check
    (jsonschema-rs) refused it."""
    if not isinstance(instance, str):
        return
    check = _patterns.get(pattern)
    if check is None:
        check = _patterns[pattern] = jsonschema_rs.validator_for({"pattern": pattern})
    if not check.is_valid(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(
    Draft4RequestValidator,
    validators={"pattern": _ecma_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER,
)


def compiled(schema: dict[str, Any]) -> Any:
    """A validator per schema object, built once: connexion would build one per request."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _compiled[id(schema)] = (schema, _Validator(schema, format_checker=FORMATS))
    return entry[1]


def _is_phone(name: str) -> bool:
    lowered = name.lower()
    return "phone" in lowered or lowered in ("to", "from", "callee", "callees", "caller")


def error_from_schema(error: ValidationError, *, parameter: str | None = None) -> ApiError:
    """The `ApiError` for one JSON Schema failure in a body (pointer) or a parameter (name)."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        missing = next((name for name in error.validator_value if name not in present), "")
        path.append(missing)
        where = parameter or missing
        return ApiError(
            Problem.MISSING_PARAMETER,
            f"The '{where}' parameter is required.",
            pointer=None if parameter else pointer(*path),
            parameter=parameter,
        )
    names = [p for p in path if not p.isdigit()]
    field = names[-1] if names else (parameter or "")
    if error.validator == "format" and error.validator_value == "uuid":
        problem = Problem.INVALID_ID
    elif error.validator in ("pattern", "format") and _is_phone(field):
        problem = Problem.INVALID_PHONE_NUMBER
    else:
        problem = Problem.INVALID_PARAMETER
    subject = f"'{field}'" if field else "The request body"
    return ApiError(
        problem,
        f"{subject} is invalid: {error.message}",
        pointer=None if parameter else pointer(*path),
        parameter=parameter,
    )


def _parse_json(raw: bytes, encoding: str) -> Any:
    try:
        if encoding.lower().replace("-", "") not in ("utf8", "ascii"):
            raw = raw.decode(encoding).encode("utf-8")
        return jsonio.loads(raw)
    except (ValueError, LookupError) as exc:
        raise ApiError(Problem.INVALID_JSON, f"The request body is not valid JSON: {exc}") from exc


class JSONBodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        return _parse_json(raw, self._encoding)

    def _validate(self, body: Any) -> None:
        if body is None:
            if self._nullable:
                return
            raise ApiError(Problem.MISSING_BODY, "The request body is required.")
        error = best_match(compiled(self._schema).iter_errors(body))
        if error is not None:
            raise error_from_schema(error)


class FormBodyValidator(FormDataValidator):  # type: ignore[misc]
    """Forms checked with the same validators as JSON bodies (ECMA patterns, every format), and refused when a
    value is not UTF-8 once percent-decoded: starlette would quietly turn those bytes into U+FFFD."""

    async def wrap_receive(self, receive: Any, *, scope: Scope) -> Any:
        length = dict(scope.get("headers") or ()).get(b"content-length", b"0").strip()
        if self._required and length.isdigit() and not int(length):  # TeleSign's "No Data Submitted"
            raise ApiError(Problem.MISSING_BODY, "No data was submitted.")
        return await super().wrap_receive(receive, scope=scope)

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        for part in raw.split(b"&"):
            try:
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(Problem.INVALID_PARAMETER, "The form body is not valid UTF-8.") from exc

        async def again() -> Any:
            yield raw

        return await super()._parse(again(), scope)

    def _validate(self, body: Any) -> None:
        if self._strict_validation:
            self._validate_params_strictly(body)
        error = best_match(compiled(self._schema).iter_errors(body))
        if error is not None:
            raise error_from_schema(error)


class ParametersValidator(ParameterValidator):  # type: ignore[misc]
    @staticmethod
    def validate_parameter(parameter_type: str, value: Any, param: dict[str, Any], param_name: Any = None) -> Any:
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            if param.get("required"):
                return ApiError(
                    Problem.MISSING_PARAMETER,
                    f"The {parameter_type} parameter '{param['name']}' is required.",
                    parameter=param["name"],
                )
            return None
        error = best_match(compiled(param.get("schema", _EMPTY)).iter_errors(value))
        return error_from_schema(error, parameter=param["name"]) if error is not None else None

    def validate_request(self, request: Any) -> None:
        if self.strict_validation:
            extra = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            if extra:
                names = ", ".join(sorted(extra))
                raise ApiError(Problem.INVALID_PARAMETER, f"Unknown query parameter: {names}.", parameter=names)
        self._refuse_malformed_query(request)
        try:
            _ = request.query_params  # connexion parses lazily, and its deepObject parser can crash on odd nesting
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ApiError(
                Problem.INVALID_PARAMETER, "The query string does not fit the operation's parameters."
            ) from exc
        checks = (
            ("query", self.validate_query_parameter),
            ("path", self.validate_path_parameter),
            ("header", self.validate_header_parameter),
            ("cookie", self.validate_cookie_parameter),
        )
        for location, check in checks:
            for param in self.parameters.get(location, []):
                error = check(param, request)
                if error:
                    raise error

    def _refuse_malformed_query(self, request: Any) -> None:
        """What connexion's parser silently drops, merges or reads too kindly: a nameless `=value`; `page=3` for a
        deepObject parameter, or `page[]=3`, `page[number]]=3`, `page[size][x]=5` (it must be sent as
        `page[number]=3`); and integers written other than in ASCII digits (Python's `int` takes `1_000` and
        other scripts' digits, which no vendor does)."""
        raw = request.scope.get("query_string", b"").decode("latin-1")
        if not raw:
            return
        params = {p["name"]: p for p in self.parameters.get("query", [])}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if not name:
                raise ApiError(Problem.INVALID_PARAMETER, "The query string has a value without a parameter name.")
            shape = _QUERY_NAME.fullmatch(name)
            base = shape.group(1) if shape else re.split(r"[\[\]]", name, maxsplit=1)[0]
            param = params.get(base)
            if param is None:
                continue  # not this operation's: strict validation (when on) says so
            deep = param.get("style") == "deepObject"
            if deep and name.startswith(base + "[") and name[len(base) + 1 :].split("]")[0] not in _fields(param):
                continue  # a field the object does not declare, in any shape: ignored, as its schema is open
            if shape is None or deep != (shape.group(2) is not None):
                fix = f"send its fields as {base}[field]=value" if deep else f"send it as {base}=value"
                raise ApiError(
                    Problem.INVALID_PARAMETER, f"'{name}' is not a parameter name here: {fix}.", parameter=base
                )
            schema = param.get("schema") or {}
            if deep:
                schema = (schema.get("properties") or {}).get(shape.group(2)) or {}
            if schema.get("type") == "integer" and not _INTEGER.fullmatch(value):
                raise ApiError(
                    Problem.INVALID_PARAMETER,
                    f"'{name}' must be an integer in digits 0-9, not {value!r}.",
                    parameter=base,
                )


def _fields(param: dict[str, Any]) -> dict[str, Any]:
    return (param.get("schema") or {}).get("properties") or {}


class _Operation(RequestValidationOperation):  # type: ignore[misc]
    def extract_content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        # connexion guesses the first declared media type when a body comes without Content-Type; a vendor does not.
        names = {name.lower() for name, _ in headers}
        has_body = b"transfer-encoding" in names or any(
            name.lower() == b"content-length" and value.strip() not in (b"", b"0") for name, value in headers
        )
        if self._operation.consumes and has_body and b"content-type" not in names:
            raise ApiError(
                Problem.UNSUPPORTED_MEDIA_TYPE,
                f"The request has a body but no Content-Type; send one of: {', '.join(self._operation.consumes)}.",
            )
        raw = next((value.decode("latin-1") for name, value in headers if name.lower() == b"content-type"), None)
        if raw is None:
            mime_type, encoding = super().extract_content_type(headers)
        else:
            # connexion's own parser misses "charset" after "; " (the usual spelling); the email parser does not
            parsed = Message()
            parsed["content-type"] = raw
            mime_type, encoding = parsed.get_content_type(), str(parsed.get_param("charset") or "utf-8")
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise ApiError(Problem.UNSUPPORTED_MEDIA_TYPE, f"Unknown charset {encoding!r}.") from exc
        return mime_type, encoding

    def validate_mime_type(self, mime_type: str) -> None:
        consumes = self._operation.consumes
        if consumes and mime_type.lower() not in MediaTypeDict([(c.lower(), None) for c in consumes]):
            raise ApiError(
                Problem.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type {mime_type} is not supported here; send one of: {', '.join(consumes)}.",
            )


class _API(RequestValidationAPI):  # type: ignore[misc]
    def make_operation(self, operation: Any) -> RequestValidationOperation:
        return _Operation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class RequestValidation(RequestValidationMiddleware):  # type: ignore[misc]
    """connexion's request validation with our validators and vendor-neutral errors."""

    api_cls = _API


VALIDATORS: dict[str, Any] = {
    "parameter": ParametersValidator,
    "body": MediaTypeDict(
        {
            **dict(VALIDATOR_MAP["body"]),
            "*/*json": JSONBodyValidator,
            "application/x-www-form-urlencoded": FormBodyValidator,
        }
    ),
}
