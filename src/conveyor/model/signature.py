"""A job's arguments, checked against its signature: bound at enqueue (positional values to
their names, unknown and missing names refused, each value checked and written as JSON by its
hint), and rebuilt from the stored JSON before the job runs."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from conveyor.errors import ConfigurationError, InvalidArguments, InvalidResult
from conveyor.model import hints
from conveyor.model.hints import ANY, Codec, Mismatch, codec_for

_EMPTY: tuple[Any, ...] = ()


class Parameter(NamedTuple):
    """One named argument of a job: its codec, and whether a value must be given."""

    name: str
    codec: Codec
    required: bool
    positional: bool = True  # may be given by position
    positional_only: bool = False


@dataclass(frozen=True, slots=True)
class ArgumentSpec:
    """What a job accepts. `extra` is the codec of a `**kwargs` parameter's values (None when
    the job takes no other names); `result` the codec of what it returns."""

    job: str
    parameters: tuple[Parameter, ...]
    extra: Codec | None = None
    result: Codec = ANY
    _codecs: dict[str, Codec] = field(init=False, repr=False)
    _checks: dict[str, Callable[[Any], Any]] = field(init=False, repr=False)
    _required: tuple[str, ...] = field(init=False, repr=False)
    _positional: tuple[str, ...] = field(init=False, repr=False)
    _by_position: tuple[str, ...] = field(init=False, repr=False)
    _plain: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "_codecs", {p.name: p.codec for p in self.parameters})
        setattr_(self, "_checks", {p.name: p.codec.encode for p in self.parameters})
        setattr_(self, "_required", tuple(p.name for p in self.parameters if p.required))
        setattr_(self, "_positional", tuple(p.name for p in self.parameters if p.positional))
        only = tuple(p.name for p in self.parameters if p.positional_only)
        setattr_(self, "_by_position", only)
        plain = all(p.codec.plain for p in self.parameters) and (self.extra or ANY).plain
        setattr_(self, "_plain", plain and not only)

    # at enqueue -------------------------------------------------------------------------------
    def bind(self, positional: tuple[Any, ...], named: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of one call, by name and as JSON; raises InvalidArguments."""
        if positional:
            named = self._by_name(positional, named)
        elif type(named) is not dict and not isinstance(named, Mapping):
            raise InvalidArguments(
                f"job {self.job!r}: arguments must be a dict of names to values, not "
                f"{type(named).__name__}: pass keyword arguments, e.g. enqueue(user_id=42)"
            )
        codecs, extra = self._codecs, self.extra
        if self._plain:
            checks = self._checks
            name = ""
            try:
                for name, value in named.items():
                    checks[name](value)
            except KeyError:  # a name of **kwargs, or an unknown one
                self._check_each(named)
            except Mismatch as exc:
                raise self._mismatch(name, exc) from None
            out = named if type(named) is dict else dict(named)
        else:
            out = {}
            for name, value in named.items():
                codec = codecs.get(name) or extra or self._refuse_unknown(name)
                try:
                    out[name] = codec.encode(value)
                except Mismatch as exc:
                    raise self._mismatch(name, exc) from None
        for name in self._required:
            if name not in out:
                self._refuse_missing(out)
        return out

    def _check_each(self, named: Mapping[str, Any]) -> None:
        codecs, extra = self._codecs, self.extra
        for name, value in named.items():
            codec = codecs.get(name) or extra or self._refuse_unknown(name)
            try:
                codec.encode(value)
            except Mismatch as exc:
                raise self._mismatch(name, exc) from None

    def _by_name(self, positional: tuple[Any, ...], named: Mapping[str, Any]) -> dict[str, Any]:
        names = self._positional
        if len(positional) > len(names):
            raise InvalidArguments(
                f"job {self.job!r} takes {len(names)} positional argument"
                f"{'' if len(names) == 1 else 's'} after the context, but {len(positional)} "
                "were given"
            )
        out = dict(zip(names, positional, strict=False))
        for name, value in named.items():
            if name in out:
                raise InvalidArguments(f"job {self.job!r}: argument {name!r} given twice")
            out[name] = value
        return out

    def _refuse_missing(self, given: Any) -> None:
        missing = [p for p in self.parameters if p.required and p.name not in given]
        first = missing[0]
        raise InvalidArguments(
            f"job {self.job!r}: missing argument {first.name!r} (expects "
            f"{first.codec.expected})"
            + (f"; also missing: {', '.join(p.name for p in missing[1:])}" if missing[1:] else "")
        )

    def _refuse_unknown(self, name: str) -> Codec:
        known = [p.name for p in self.parameters]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        accepted = ", ".join(known) or "none"
        raise InvalidArguments(
            f"job {self.job!r}: unknown argument {name!r} (it takes: {accepted}){hint}"
        )

    def _mismatch(self, name: str, exc: Mismatch) -> InvalidArguments:
        where = f"{name}{exc.where}"
        return InvalidArguments(f"job {self.job!r}: argument {where!r} {exc.describe()}")

    # before the job runs ----------------------------------------------------------------------
    def decode(self, stored: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's positional and keyword values, rebuilt from the stored JSON; raises
        InvalidArguments when they can never fit (a job stored by a producer that did not
        know the signature, or before it changed)."""
        if self._plain:  # plain values decode as they encode: checked only
            return _EMPTY, self.bind(_EMPTY, stored)
        if not isinstance(stored, Mapping):
            raise InvalidArguments(f"job {self.job!r}: stored arguments are not a mapping")
        codecs, extra = self._codecs, self.extra
        out = {}
        for name, value in stored.items():
            codec = codecs.get(name) or extra or self._refuse_unknown(name)
            try:
                out[name] = codec.decode(value)
            except Mismatch as exc:
                raise self._mismatch(name, exc) from None
        for name in self._required:
            if name not in out:
                self._refuse_missing(out)
        if not self._by_position:
            return _EMPTY, out
        positional = tuple(out.pop(name) for name in self._by_position if name in out)
        return positional, out

    # results ----------------------------------------------------------------------------------
    def encode_result(self, value: Any) -> Any:
        """What the job returned, as JSON; raises InvalidResult naming the hint."""
        try:
            return self.result.encode(value)
        except Mismatch as exc:
            raise InvalidResult(
                f"job {self.job!r} returned a value that does not fit its return hint: "
                f"{'the value' if not exc.where else 'result' + exc.where} {exc.describe()}"
            ) from None

    def decode_result(self, stored: Any) -> Any:
        """A stored result, rebuilt by the return hint; raises InvalidResult."""
        try:
            return self.result.decode(stored)
        except Mismatch as exc:
            raise InvalidResult(
                f"the stored result of job {self.job!r} does not fit its return hint: "
                f"{'the value' if not exc.where else 'result' + exc.where} {exc.describe()}"
            ) from None


def spec_of(
    job: str,
    target: Callable[..., Any],
    *,
    method: bool = False,
    local_names: Mapping[str, Any] | None = None,
) -> ArgumentSpec:
    """The spec of a job function (its first parameter is the Context), or of a class's
    `run(self, ctx, ...)` with `method`; raises ConfigurationError naming what is wrong.
    `local_names`: the names of the scope it was defined in, for hints of local classes."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"job {job!r}: its signature cannot be read ({exc})") from None
    found = list(signature.parameters.values())
    skip = 2 if method else 1
    if len(found) < skip and not any(p.kind is p.VAR_POSITIONAL for p in found):
        raise ConfigurationError(
            f"job {job!r} must take the Context as its first argument, e.g. "
            "def job(ctx: conveyor.Context, ...)"
        )
    try:
        resolved = hints.hints_of(target, local_names)
    except hints.Unsupported as exc:
        raise _unsupported(job, "", exc) from None
    parameters = []
    extra: Codec | None = None
    for parameter in found[skip:]:
        hint = resolved.get(parameter.name, Any)
        try:
            codec = codec_for(hint)
        except hints.Unsupported as exc:
            raise _unsupported(job, parameter.name, exc) from None
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = codec
        elif parameter.kind is not parameter.VAR_POSITIONAL:
            parameters.append(
                Parameter(
                    parameter.name,
                    codec,
                    parameter.default is parameter.empty,
                    parameter.kind is not parameter.KEYWORD_ONLY,
                    parameter.kind is parameter.POSITIONAL_ONLY,
                )
            )
    try:
        result = codec_for(resolved["return"]) if "return" in resolved else ANY
    except hints.Unsupported as exc:
        raise _unsupported(job, "return", exc) from None
    return ArgumentSpec(job, tuple(parameters), extra, result)


def spec_of_schema(job: str, schema: Any) -> ArgumentSpec:
    """The spec of a by-name job from a declared schema: a TypedDict, a dataclass or a
    Pydantic model, whose fields are the job's arguments."""
    try:
        codec = codec_for(schema)
    except hints.Unsupported as exc:
        raise _unsupported(job, "", exc) from None
    if isinstance(codec, hints.Fields):
        required = codec.required
        params = tuple(Parameter(n, c, n in required) for n, c in codec.fields.items())
        return ArgumentSpec(job, params)
    model_fields = getattr(schema, "model_fields", None)
    if isinstance(model_fields, Mapping):
        params = tuple(
            Parameter(name, _pydantic_field(job, name, info), bool(info.is_required()))
            for name, info in model_fields.items()
        )
        return ArgumentSpec(job, params)
    raise ConfigurationError(
        f"job {job!r}: args= takes a TypedDict, a dataclass or a Pydantic model, not {schema!r}"
    )


def _pydantic_field(job: str, name: str, info: Any) -> Codec:
    try:
        return codec_for(info.annotation)
    except hints.Unsupported as exc:
        raise _unsupported(job, name, exc) from None


def _unsupported(job: str, parameter: str, exc: Exception) -> ConfigurationError:
    what = {"": "", "return": " its return hint:"}.get(parameter, f" parameter {parameter!r}:")
    return ConfigurationError(
        f"job {job!r}:{what} {exc}. Supported: {hints.SUPPORTED}. To pass the arguments "
        "through unchecked, register it with @app.job(validate=False)"
    )
