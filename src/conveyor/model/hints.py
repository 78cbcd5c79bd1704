"""Type hints compiled into codecs: each checks a value against its hint, writes it as plain
JSON (what the stores keep, readable by the dashboard and by producers in other languages) and
rebuilds it from that JSON before a job runs. Compiled once per job at decoration, so the check
at enqueue is a few attribute tests per argument."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any
from uuid import UUID

from conveyor.errors import ConfigurationError

SUPPORTED = (
    "str, int, float, bool, None, Any, Literal, unions and Optional, list, tuple, set, "
    "frozenset and dict[str, ...] of these (or Sequence/Mapping), Enum, aware datetime and "
    "time, date, UUID, Decimal, Path, dataclasses, TypedDict, and Pydantic models"
)


class _Unreadable(Exception):
    """A JSON form that is not of the type a loader reads (caught by `_Leaf.decode`)."""


class Mismatch(Exception):
    """A value does not fit a hint: `where` is the path inside the value ("" for the value
    itself, else like "[2].price"), `expected` the hint in words, `given` the value."""

    def __init__(self, expected: str, given: object, where: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.given = given
        self.where = where

    def inside(self, step: str) -> Mismatch:
        """The same mismatch, seen from the container one level up."""
        return Mismatch(self.expected, self.given, step + self.where)

    def describe(self) -> str:
        """'expects int, got str 'abc'' (or 'is missing (...)')."""
        if self.given is ABSENT:
            return f"is missing ({self.expected})"
        return f"expects {self.expected}, got {shown(self.given)}"


ABSENT = object()  # the `given` of a required field that was not given


def shown(value: object) -> str:
    """A value in an error message: its type, and a short repr."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "None" if value is None else f"{type(value).__name__} {text}"


class Codec:
    """Checks, writes and rebuilds the values of one hint. `plain`: values are already JSON
    and are kept as they are (encode only checks them, decode only checks them)."""

    __slots__ = ("expected", "plain")

    def __init__(self, expected: str, plain: bool) -> None:
        self.expected = expected
        self.plain = plain

    def encode(self, value: Any) -> Any:
        """`value` (a rich value, or already its JSON form) as plain JSON; raises Mismatch."""
        raise NotImplementedError

    def decode(self, data: Any) -> Any:
        """The value rebuilt from its JSON form; raises Mismatch."""
        raise NotImplementedError


class _Any(Codec):
    __slots__ = ()

    def encode(self, value: Any) -> Any:
        return value

    def decode(self, data: Any) -> Any:
        return data


class _Exact(Codec):
    """str, bool, None: one JSON type, kept as is."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        super().__init__("None" if kind is type(None) else kind.__name__, True)
        self.kind = kind

    def encode(self, value: Any) -> Any:
        if type(value) is not self.kind and not (self.kind is str and isinstance(value, str)):
            raise Mismatch(self.expected, value)
        return value

    def decode(self, data: Any) -> Any:
        return self.encode(data)


class _Int(Codec):
    __slots__ = ()

    def encode(self, value: Any) -> Any:
        if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
            raise Mismatch("int", value)
        return value

    def decode(self, data: Any) -> Any:
        return self.encode(data)


class _Float(Codec):
    """float, and int where a float is expected (as Python's own typing allows)."""

    __slots__ = ()

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if (
            kind is not float
            and kind is not int
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            raise Mismatch("float", value)
        return value

    def decode(self, data: Any) -> Any:
        return float(self.encode(data))


class _Literal(Codec):
    __slots__ = ("values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        super().__init__(" or ".join(repr(v) for v in values), True)
        self.values = {(type(v), v) for v in values}

    def encode(self, value: Any) -> Any:
        if (type(value), value) not in self.values:
            raise Mismatch(self.expected, value)
        return value

    def decode(self, data: Any) -> Any:
        return self.encode(data)


class _Union(Codec):
    """The first option the value fits (Optional[X] is X or None)."""

    __slots__ = ("options",)

    def __init__(self, options: list[Codec]) -> None:
        plain = all(option.plain for option in options)
        super().__init__(" | ".join(option.expected for option in options), plain)
        self.options = options

    def encode(self, value: Any) -> Any:
        return self._first(value, "encode")

    def decode(self, data: Any) -> Any:
        return self._first(data, "decode")

    def _first(self, value: Any, how: str) -> Any:
        deepest: Mismatch | None = None
        for option in self.options:
            try:
                return getattr(option, how)(value)
            except Mismatch as exc:
                if exc.where and (deepest is None or len(exc.where) > len(deepest.where)):
                    deepest = exc  # the option the value came closest to fitting
        raise deepest or Mismatch(self.expected, value)


class _Items(Codec):
    """list[X], tuple[X, ...], set[X], frozenset[X]: a JSON list."""

    __slots__ = ("item", "kind")

    def __init__(self, kind: type, item: Codec) -> None:
        shown_kind = "tuple" if kind is tuple else kind.__name__
        suffix = ", ..." if kind is tuple else ""
        super().__init__(f"{shown_kind}[{item.expected}{suffix}]", False)
        self.kind = kind
        self.item = item

    def encode(self, value: Any) -> Any:
        if isinstance(value, str | bytes | Mapping) or not isinstance(
            value, list | tuple | set | frozenset
        ):
            raise Mismatch(self.expected, value)
        encode = self.item.encode
        out = []
        for index, item in enumerate(value):
            try:
                out.append(encode(item))
            except Mismatch as exc:
                raise exc.inside(f"[{index}]") from None
        return out

    def decode(self, data: Any) -> Any:
        if not isinstance(data, list | tuple):
            raise Mismatch(self.expected, data)
        decode = self.item.decode
        out = []
        for index, item in enumerate(data):
            try:
                out.append(decode(item))
            except Mismatch as exc:
                raise exc.inside(f"[{index}]") from None
        return out if self.kind is list else self.kind(out)


class _Tuple(Codec):
    """tuple[X, Y]: a JSON list of that length."""

    __slots__ = ("items",)

    def __init__(self, items: list[Codec]) -> None:
        super().__init__(f"tuple[{', '.join(item.expected for item in items)}]", False)
        self.items = items

    def encode(self, value: Any) -> Any:
        return self._each(value, "encode", list)

    def decode(self, data: Any) -> Any:
        return self._each(data, "decode", tuple)

    def _each(self, value: Any, how: str, kind: Callable[[list[Any]], Any]) -> Any:
        if not isinstance(value, list | tuple) or len(value) != len(self.items):
            raise Mismatch(self.expected, value)
        out = []
        for index, (codec, item) in enumerate(zip(self.items, value, strict=True)):
            try:
                out.append(getattr(codec, how)(item))
            except Mismatch as exc:
                raise exc.inside(f"[{index}]") from None
        return kind(out)


class _Dict(Codec):
    """dict[str, X] (keys may be str Enums or Literals): a JSON object."""

    __slots__ = ("key", "value")

    def __init__(self, key: Codec, value: Codec) -> None:
        super().__init__(f"dict[{key.expected}, {value.expected}]", False)
        self.key = key
        self.value = value

    def encode(self, value: Any) -> Any:
        return self._each(value, "encode")

    def decode(self, data: Any) -> Any:
        return self._each(data, "decode")

    def _each(self, value: Any, how: str) -> Any:
        if not isinstance(value, Mapping):
            raise Mismatch(self.expected, value)
        key_codec, value_codec = getattr(self.key, how), getattr(self.value, how)
        out = {}
        for key, item in value.items():
            try:
                name = key_codec(key)
            except Mismatch as exc:
                raise exc.inside(f"[{key!r}] (a key)") from None
            try:
                out[name] = value_codec(item)
            except Mismatch as exc:
                raise exc.inside(f"[{key!r}]") from None
        return out


class _Leaf(Codec):
    """A rich scalar stored as one JSON value: Enum, datetime, date, time, UUID, Decimal,
    Path. Encoding accepts the rich value, or its JSON form (from a by-name producer)."""

    __slots__ = ("accepts", "dump", "kind", "load")

    def __init__(
        self,
        kind: type,
        expected: str,
        load: Callable[[Any], Any],
        dump: Callable[[Any], Any],
        accepts: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__(expected, False)
        self.kind = kind
        self.load = load
        self.dump = dump
        self.accepts = accepts

    def encode(self, value: Any) -> Any:
        if isinstance(value, self.kind) and (self.accepts is None or self.accepts(value)):
            return self.dump(value)
        self.decode(value)  # its JSON form, checked
        return value

    def decode(self, data: Any) -> Any:
        if isinstance(data, self.kind) and (self.accepts is None or self.accepts(data)):
            return data
        try:
            value = self.load(data)
        except (_Unreadable, TypeError, ValueError, InvalidOperation, AttributeError):
            raise Mismatch(self.expected, data) from None
        if self.accepts is not None and not self.accepts(value):
            raise Mismatch(self.expected, data)
        return value


def _from_iso(kind: type[date] | type[time]) -> Callable[[Any], Any]:
    def load(text: Any) -> Any:
        if not isinstance(text, str):
            raise _Unreadable(text)
        return kind.fromisoformat(text)

    return load


def _aware(value: Any) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def _plain_date(value: Any) -> bool:
    return not isinstance(value, datetime)


def _decimal(data: Any) -> Decimal:
    if isinstance(data, bool) or not isinstance(data, str | int):
        raise _Unreadable(data)  # a float would bring its binary rounding with it
    return Decimal(data)


def _text(kind: Callable[[str], Any]) -> Callable[[Any], Any]:
    def load(data: Any) -> Any:
        if not isinstance(data, str):
            raise _Unreadable(data)
        return kind(data)

    return load


def _enum(kind: type[enum.Enum]) -> Codec:
    values = ", ".join(repr(member.value) for member in kind)
    return _Leaf(kind, f"{kind.__name__} (one of {values})", kind, lambda m: m.value)


class Fields(Codec):
    """A dataclass or TypedDict: a JSON object with its fields, each per its own hint."""

    __slots__ = ("build", "fields", "kind", "required")

    def __init__(
        self,
        kind: type,
        fields: dict[str, Codec],
        required: frozenset[str],
        build: Callable[[dict[str, Any]], Any],
    ) -> None:
        super().__init__(kind.__name__, False)
        self.kind = kind
        self.fields = fields
        self.required = required
        self.build = build

    def encode(self, value: Any) -> Any:
        if dataclasses.is_dataclass(self.kind) and isinstance(value, self.kind):
            value = {name: getattr(value, name) for name in self.fields}
        return self._each(value, "encode")

    def decode(self, data: Any) -> Any:
        if dataclasses.is_dataclass(self.kind) and isinstance(data, self.kind):
            return data
        return self.build(self._each(data, "decode"))

    def _each(self, value: Any, how: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise Mismatch(f"{self.expected} (or a dict of its fields)", value)
        out = {}
        for name, item in value.items():
            codec = self.fields.get(name)
            if codec is None:
                known = ", ".join(self.fields)
                raise Mismatch(f"one of the fields {known}", name, f".{name} (unknown field)")
            try:
                out[name] = getattr(codec, how)(item)
            except Mismatch as exc:
                raise exc.inside(f".{name}") from None
        for name in self.fields:
            if name in self.required and name not in value:
                raise Mismatch(f"{self.expected} requires it", ABSENT, f".{name}")
        return out


class _Pydantic(Codec):
    """A Pydantic model, through its own validation and JSON dump (duck-typed: Pydantic is
    not a dependency of the core)."""

    __slots__ = ("kind",)

    def __init__(self, kind: Any) -> None:
        super().__init__(kind.__name__, False)
        self.kind = kind

    def encode(self, value: Any) -> Any:
        return self.decode(value).model_dump(mode="json")

    def decode(self, data: Any) -> Any:
        if isinstance(data, self.kind):
            return data
        try:
            return self.kind.model_validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            if callable(errors) and errors():
                first = errors()[0]
                where = "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.get("loc", ())
                )
                message = str(first.get("msg", self.expected))
                raise Mismatch(message, first.get("input"), where) from None
            raise Mismatch(self.expected, data) from None


ANY = _Any("Any", True)
_SCALARS: dict[Any, Codec] = {
    Any: ANY,
    object: ANY,
    str: _Exact(str),
    bool: _Exact(bool),
    type(None): _Exact(type(None)),
    None: _Exact(type(None)),
    int: _Int("int", True),
    float: _Float("float", False),
}
_LISTS: dict[Any, type] = {
    list: list, tuple: tuple, set: set, frozenset: frozenset,
    typing.List: list, typing.Tuple: tuple, typing.Set: set, typing.FrozenSet: frozenset,  # noqa: UP006
}  # fmt: skip
_SEQUENCES = {"Sequence", "MutableSequence", "Iterable", "Collection"}
_SETS = {"Set", "MutableSet", "AbstractSet"}
_MAPPINGS = {"Mapping", "MutableMapping"}
_KEY_QUALIFIERS = {typing.Required, typing.NotRequired, getattr(typing, "ReadOnly", None)} - {None}


class Unsupported(ConfigurationError):
    """A hint Conveyor cannot store as JSON."""


def codec_for(hint: Any) -> Codec:
    """Compile `hint` (resolved, as typing.get_type_hints gives it); raises Unsupported."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return codec_for(args[0])
    if origin is typing.Literal:
        return _Literal(args)
    if origin is typing.Union or origin is types.UnionType:
        return _Union([codec_for(arg) for arg in args])
    if isinstance(hint, typing.TypeVar):
        return codec_for(hint.__bound__) if hint.__bound__ is not None else ANY
    if isinstance(hint, typing.NewType):
        return codec_for(hint.__supertype__)
    if origin is not None:
        return _generic(hint, origin, args)
    if hint in _LISTS:
        return _Items(_LISTS[hint], ANY)
    if hint is dict or hint is typing.Dict:  # noqa: UP006
        return _Dict(_SCALARS[str], ANY)
    if isinstance(hint, type):
        return _class(hint)
    raise Unsupported(f"{hint!r} is not a type Conveyor can store")


def _generic(hint: Any, origin: Any, args: tuple[Any, ...]) -> Codec:
    name = getattr(origin, "__name__", "")
    module = getattr(origin, "__module__", "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Items(tuple, codec_for(args[0]))
        if args == ((),):
            return _Tuple([])
        return _Tuple([codec_for(arg) for arg in args])
    if origin in (list, set, frozenset) or (module == "collections.abc" and name in _SEQUENCES):
        kind = origin if origin in (set, frozenset) else list
        return _Items(kind, codec_for(args[0]) if args else ANY)
    if module == "collections.abc" and name in _SETS:
        return _Items(set if name == "MutableSet" else frozenset, codec_for(args[0]))
    if origin is dict or (module == "collections.abc" and name in _MAPPINGS):
        key = codec_for(args[0]) if args else _SCALARS[str]
        if not _text_keys(key):
            raise Unsupported(f"{hint!r}: JSON objects have text keys (use dict[str, ...])")
        return _Dict(key, codec_for(args[1]) if args else ANY)
    raise Unsupported(f"{hint!r} is not a type Conveyor can store")


def _text_keys(codec: Codec) -> bool:
    if codec is _SCALARS[str] or codec is ANY:
        return True
    if isinstance(codec, _Literal):
        return all(kind is str for kind, _ in codec.values)
    if isinstance(codec, _Leaf):
        return issubclass(codec.kind, UUID | PurePath) or (
            issubclass(codec.kind, enum.Enum) and all(isinstance(m.value, str) for m in codec.kind)
        )
    return False


def _class(kind: type) -> Codec:
    if issubclass(kind, enum.Enum):
        return _enum(kind)
    if issubclass(kind, datetime):
        return _Leaf(kind, "an aware datetime (ISO 8601 with an offset)", _from_iso(kind),
                     datetime.isoformat, _aware)  # fmt: skip
    if issubclass(kind, date):
        return _Leaf(kind, "a date (ISO 8601)", _from_iso(kind), date.isoformat, _plain_date)
    if issubclass(kind, time):
        return _Leaf(kind, "an aware time (ISO 8601 with an offset)", _from_iso(kind),
                     time.isoformat, _aware)  # fmt: skip
    if issubclass(kind, UUID):
        return _Leaf(kind, "a UUID", _text(kind), str)
    if issubclass(kind, Decimal):
        return _Leaf(kind, "a Decimal (as text)", _decimal, str)
    if issubclass(kind, PurePath):
        return _Leaf(kind, "a path (as text)", _text(kind), str)
    if dataclasses.is_dataclass(kind):
        return _dataclass(kind)
    if typing.is_typeddict(kind):
        return _typeddict(kind)
    if callable(getattr(kind, "model_validate", None)) and hasattr(kind, "model_fields"):
        return _Pydantic(kind)
    raise Unsupported(f"{kind.__module__}.{kind.__qualname__} is not a type Conveyor can store")


def hints_of(target: Any, local_names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved type hints of a function or class (names looked up in its module, then
    in `local_names`); Unsupported when one cannot be resolved."""
    try:
        return typing.get_type_hints(target, localns=dict(local_names or {}), include_extras=True)
    except (NameError, TypeError, AttributeError) as exc:
        raise Unsupported(f"its type hints cannot be resolved ({exc})") from None


def _dataclass(kind: type) -> Codec:
    hints = hints_of(kind)
    fields: dict[str, Codec] = {}
    required = set()
    for field in dataclasses.fields(kind):
        if not field.init:
            continue
        fields[field.name] = codec_for(hints.get(field.name, Any))
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.add(field.name)
    return Fields(kind, fields, frozenset(required), lambda values: kind(**values))


def _typeddict(kind: type) -> Codec:
    hints = hints_of(kind)
    declared: frozenset[str] = getattr(kind, "__required_keys__", frozenset())
    fields, required = {}, set()
    for name, hint in hints.items():
        qualifiers = set()
        while typing.get_origin(hint) in _KEY_QUALIFIERS:
            qualifiers.add(typing.get_origin(hint))
            hint = typing.get_args(hint)[0]
        fields[name] = codec_for(hint)
        # read from the hints too: Python 3.11 misses the qualifiers of postponed annotations
        if typing.Required in qualifiers or (
            name in declared and typing.NotRequired not in qualifiers
        ):
            required.add(name)
    return Fields(kind, fields, frozenset(required), dict)
