"""The stores' SQL files: named queries, templates rendered once at load, numbered migrations.

One rule splits every script into statements, for named queries and for migrations alike: a
statement ends at a `;` that lies outside a single-quoted literal (`''` is a quote inside it),
a double-quoted identifier (`""` likewise), a `--` line comment and a `/* */` comment (nested,
as in PostgreSQL). Dollar-quoted bodies (`$$ … $$`), `E'…'` backslash escapes and SQLite's
`CREATE TRIGGER … BEGIN … END` are not understood (none of the stores' files uses them): a `;`
inside one would end the statement early.

A queries file is a series of blocks, each opened by a header line at column 0:

    -- name: get_job                  one statement, Q["get_job"]
    -- name: claim_any, claim_in      one template, one statement per name
    -- fragment: due_candidates       a piece of SQL that `{due_candidates}` stands for

Text before the first header is ignored. In a block (or fragment) with several names, a line
ending with `-- only: claim_in` (one or more names, comma-separated) is kept only in the
statements it names, with the tag removed. `{fragment}` in SQL code is replaced by the
fragment, rendered for the statement being built (so its `-- only:` lines name statements
too); the fragment's lines after its first are indented like the line the placeholder is
on. Whole-line comments and blank lines are dropped from every statement. All of it happens
once, when the file is loaded: callers get plain, parameterised statements by name.

Every mistake in a file (a name defined twice, a query holding two statements or none, an
unknown or unused fragment, an unterminated literal) raises ConfigurationError naming the
file and the block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from types import MappingProxyType

from conveyor.errors import ConfigurationError

__all__ = ["load_queries", "migrations", "parse_queries", "split_statements"]

_TOKEN = re.compile(
    r"""
      (?P<literal>'(?:[^']+|'')*')
    | (?P<identifier>"(?:[^"]+|"")*")
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<end>;)
    | (?P<open>['"])
    | (?P<code>[^'";/-]+|[/-])
    """,
    re.VERBOSE,
)
_BLOCK_COMMENT_EDGE = re.compile(r"/\*|\*/")
_HEADER = re.compile(r"--\s*(name|fragment)\s*:")
_HEADER_NAMES = re.compile(r"--\s*(name|fragment)\s*:\s*(\w+(?:\s*,\s*\w+)*)\s*")
_ONLY = re.compile(r"--\s*only\s*:(.*)")
_NAMES = re.compile(r"\s*\w+(?:\s*,\s*\w+)*\s*")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MIGRATION = re.compile(r"^(\d+)_\w+\.sql$")


# tokens ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # code | literal | identifier | line_comment | block_comment | end
    start: int
    end: int


def _tokens(text: str, source: str) -> Iterator[_Token]:
    """The whole of `text` as consecutive tokens; an unterminated literal or comment raises."""
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None and match.lastgroup is not None  # `code` takes any other char
        kind, end = match.lastgroup, match.end()
        if kind == "open":
            what = "string literal" if text[position] == "'" else "quoted identifier"
            raise ConfigurationError(f"{source}: unterminated {what} at {_where(text, position)}")
        if kind == "block_comment":
            end = _block_comment_end(text, position, source)
        yield _Token(kind, position, end)
        position = end


def _block_comment_end(text: str, start: int, source: str) -> int:
    depth = 0
    for edge in _BLOCK_COMMENT_EDGE.finditer(text, start):
        depth += 1 if edge.group() == "/*" else -1
        if depth == 0:
            return edge.end()
    raise ConfigurationError(f"{source}: unterminated /* comment at {_where(text, start)}")


def _where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    shown = text[position:].split("\n", 1)[0][:40]
    return f"line {line}: {shown!r}"


def _significant_start(text: str, token: _Token) -> int | None:
    """Where SQL begins in `token` (None for whitespace and comments)."""
    if token.kind in ("line_comment", "block_comment"):
        return None
    if token.kind != "code":
        return token.start
    chunk = text[token.start : token.end]
    stripped = chunk.lstrip()
    return token.end - len(stripped) if stripped else None


# statements ------------------------------------------------------------------------------------
def split_statements(text: str, source: str = "SQL script") -> list[str]:
    """The statements of a script, in order, each ending with its `;` (comments and
    whitespace between statements are dropped; those inside one are kept)."""
    statements: list[str] = []
    start: int | None = None
    for token in _tokens(text, source):
        if token.kind == "end":
            if start is not None:
                statements.append(text[start : token.end])
            start = None
        elif start is None:
            start = _significant_start(text, token)
    if start is not None:
        raise ConfigurationError(
            f"{source}: incomplete SQL statement (no closing ;) at {_where(text, start)}"
        )
    return statements


def _drop_comment_lines(text: str, source: str) -> str:
    """`text` without its blank lines and whole-line `--` comments (lines that begin inside a
    literal or a block comment are kept as they are)."""
    inside: list[tuple[int, int]] = [
        (t.start, t.end)
        for t in _tokens(text, source)
        if t.kind in ("literal", "identifier", "block_comment")
    ]
    kept: list[str] = []
    offset = 0
    spans = iter(inside)
    span = next(spans, None)
    for line in text.split("\n"):
        while span is not None and span[1] <= offset:
            span = next(spans, None)
        within = span is not None and span[0] < offset < span[1]
        stripped = line.strip()
        if within or (stripped and not stripped.startswith("--")):
            kept.append(line)
        offset += len(line) + 1
    return "\n".join(kept).strip()


# queries files ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Block:
    kind: str  # name | fragment
    names: tuple[str, ...]
    line: int
    text: str = ""
    rendered_for: set[str] = field(default_factory=set)  # the statements built from it
    tagged: set[str] = field(default_factory=set)  # the names its `-- only:` tags list

    def label(self, source: str) -> str:
        return f"{source}: {self.kind} {', '.join(self.names)!r} (line {self.line})"


def parse_queries(text: str, source: str = "queries file") -> dict[str, str]:
    """Every statement a queries file defines, by name (see the module docstring)."""
    blocks = _blocks(text, source)
    fragments = {b.names[0]: b for b in blocks if b.kind == "fragment"}
    queries: dict[str, str] = {}
    for block in blocks:
        if block.kind != "name":
            continue
        for name in block.names:
            rendered = _render(block, name, fragments, (), source)
            statements = split_statements(rendered, f"{block.label(source)}: query {name!r}")
            if len(statements) != 1:
                raise ConfigurationError(
                    f"{block.label(source)}: query {name!r} must hold one statement, "
                    f"not {len(statements)}"
                )
            queries[name] = _drop_comment_lines(statements[0], source)
    for block in blocks:
        if block.kind == "fragment" and not block.rendered_for:
            raise ConfigurationError(f"{block.label(source)}: no query uses it")
        if stray := block.tagged - block.rendered_for:
            raise ConfigurationError(
                f"{block.label(source)}: an `-- only:` tag names {sorted(stray)}, "
                f"which {'is' if len(stray) == 1 else 'are'} not built from it"
            )
    return queries


def _blocks(text: str, source: str) -> list[_Block]:
    """The file cut at its header lines (real `--` comments at column 0)."""
    blocks: list[_Block] = []
    seen: dict[str, int] = {}
    body_start: int | None = None
    for token in _tokens(text, source):
        if token.kind != "line_comment" or (token.start and text[token.start - 1] != "\n"):
            continue
        comment = text[token.start : token.end].rstrip()
        if not _HEADER.match(comment):
            continue
        header = _HEADER_NAMES.fullmatch(comment)
        line = text.count("\n", 0, token.start) + 1
        if header is None:
            raise ConfigurationError(f"{source}: line {line}: malformed header {comment!r}")
        kind = header.group(1)
        names = tuple(n.strip() for n in header.group(2).split(","))
        if kind == "fragment" and len(names) > 1:
            raise ConfigurationError(f"{source}: line {line}: a fragment has one name")
        for name in names:
            if name in seen:
                raise ConfigurationError(
                    f"{source}: line {line}: {name!r} is defined twice (first on line {seen[name]})"
                )
            seen[name] = line
        if blocks and body_start is not None:
            blocks[-1].text = text[body_start : token.start]
        blocks.append(_Block(kind, names, line))
        body_start = token.end
    if blocks and body_start is not None:
        blocks[-1].text = text[body_start:]
    return blocks


def _render(
    block: _Block,
    name: str,
    fragments: Mapping[str, _Block],
    using: tuple[str, ...],
    source: str,
) -> str:
    """`block`'s text as statement `name` sees it: the lines tagged for other statements
    dropped, the tags removed, and the placeholders replaced by their fragments."""
    block.rendered_for.add(name)
    text = _select_lines(block, name, source)
    out: list[str] = []
    for token in _tokens(text, block.label(source)):
        chunk = text[token.start : token.end]
        if token.kind == "code" and "{" in chunk:

            def fragment(match: re.Match[str], start: int = token.start) -> str:
                line_start = text.rfind("\n", 0, start + match.start()) + 1
                indent = text[line_start:].removesuffix(text[line_start:].lstrip(" \t"))
                piece = _fragment(match.group(1), block, name, fragments, using, source)
                return piece.replace("\n", "\n" + indent)

            chunk = _PLACEHOLDER.sub(fragment, chunk)
        out.append(chunk)
    return "".join(out)


def _select_lines(block: _Block, name: str, source: str) -> str:
    """`block`'s text without the lines whose `-- only:` tag leaves `name` out, and without
    the tags (nor the blanks before them) of the lines kept."""
    text = block.text
    cuts: list[tuple[int, int]] = []
    multiline_end = 0  # the end of the last literal or block comment spanning lines
    for token in _tokens(text, block.label(source)):
        if token.kind in ("literal", "identifier", "block_comment"):
            if "\n" in text[token.start : token.end]:
                multiline_end = token.end
            continue
        if token.kind != "line_comment":
            continue
        comment = text[token.start : token.end].rstrip()
        tag = _ONLY.fullmatch(comment)
        if tag is None:
            continue
        if not _NAMES.fullmatch(tag.group(1)):
            raise ConfigurationError(f"{block.label(source)}: malformed tag {comment!r}")
        line_start = text.rfind("\n", 0, token.start) + 1
        if multiline_end > line_start or not text[line_start : token.start].strip():
            raise ConfigurationError(
                f"{block.label(source)}: an `-- only:` tag must end a line of SQL "
                f"(one that begins outside literals and comments): {comment!r}"
            )
        listed = {n.strip() for n in tag.group(1).split(",")}
        if block.kind == "name" and (stray := listed.difference(block.names)):
            raise ConfigurationError(
                f"{block.label(source)}: an `-- only:` tag names {sorted(stray)}, "
                "not a name of this block"
            )
        block.tagged |= listed
        if name in listed:
            before = text[line_start : token.start]
            cuts.append((line_start + len(before.rstrip(" \t")), token.end))
        else:
            newline = text.find("\n", token.end)
            cuts.append((line_start, token.end if newline == -1 else newline + 1))
    kept: list[str] = []
    position = 0
    for start, end in cuts:
        kept.append(text[position:start])
        position = end
    kept.append(text[position:])
    return "".join(kept)


def _fragment(
    fragment_name: str,
    block: _Block,
    name: str,
    fragments: Mapping[str, _Block],
    using: tuple[str, ...],
    source: str,
) -> str:
    """Fragment `fragment_name` rendered for statement `name`, comment lines dropped."""
    found = fragments.get(fragment_name)
    if found is None:
        raise ConfigurationError(
            f"{block.label(source)}: {{{fragment_name}}} names no fragment"
            + (f" (fragments: {', '.join(sorted(fragments))})" if fragments else "")
        )
    if fragment_name in using:
        cycle = " -> ".join((*using, fragment_name))
        raise ConfigurationError(f"{source}: fragments include each other: {cycle}")
    piece = _drop_comment_lines(
        _render(found, name, fragments, (*using, fragment_name), source), source
    )
    if any(t.kind == "end" for t in _tokens(piece, source)):
        raise ConfigurationError(
            f"{found.label(source)}: a fragment is part of a statement: it holds no ;"
        )
    if not piece:
        raise ConfigurationError(f"{found.label(source)}: empty for query {name!r}")
    return piece


# packages ----------------------------------------------------------------------------------------
def load_queries(package: str, filename: str = "queries.sql") -> Mapping[str, str]:
    """Every statement of `package`'s queries file, by name, read and rendered now."""
    text = files(package).joinpath(filename).read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text, f"{package}/{filename}"))


def migrations(package: str) -> list[tuple[int, str]]:
    """(version, script) of every `migrations/NNNN_name.sql` of `package`, oldest first."""
    found: list[tuple[int, str]] = []
    for entry in files(package).joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)
