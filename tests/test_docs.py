"""The docs match the code: links resolve, the issue's ADRs exist, commands and topics are real.

Fast and offline. Each check is a function that returns what it found wrong, so every check is
also run once on a deliberately broken input (the ``*_is_not_vacuous`` tests): a check that can
never fail proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from upbit_pipeline.cli import app
from upbit_pipeline.streaming.topics import TopicNames

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ADR_DIR = DOCS / "adr"
UPBIT_PACKAGE = ROOT / "src" / "upbit_pipeline" / "upbit"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


# -- markdown helpers -----------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`\n]+`")


def split_code(text: str) -> tuple[list[str], list[str]]:
    """(prose lines with inline code removed, code snippets: fenced lines and inline spans)."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
            continue
        code += [span[1:-1] for span in _CODE_SPAN.findall(line)]
        prose.append(_CODE_SPAN.sub("", line))
    return prose, code


def _join_continuations(lines: list[str]) -> list[str]:
    """Shell lines ending in a backslash continue on the next line."""
    joined: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())  # [x](y) -> x
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or match is None:
            continue
        base = slug(match[1])
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


# -- check 1: every relative link resolves --------------------------------------------------------

_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def link_targets(text: str) -> Iterator[str]:
    prose, _ = split_code(text)
    for line in prose:
        yield from _INLINE_LINK.findall(line)
        ref = _REF_LINK.match(line)
        if ref:
            yield ref[1]


def broken_links(path: Path, text: str) -> list[str]:
    """Relative links of ``path`` whose file (or heading anchor in a .md file) does not exist."""
    broken = []
    for target in link_targets(text):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if file_part and not dest.exists():
            broken.append(f"{target} (no such file)")
            continue
        if anchor and dest.suffix == ".md":
            body = text if dest == path else dest.read_text(encoding="utf-8")
            if anchor.lower() not in anchors(body):
                broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


def test_every_relative_link_resolves() -> None:
    problems = {
        str(path.relative_to(ROOT)): broken
        for path in doc_files()
        if (broken := broken_links(path, path.read_text(encoding="utf-8")))
    }
    assert problems == {}


def test_link_check_is_not_vacuous(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# A heading\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    text = (
        "[ok](other.md) [ok](other.md#a-heading) [web](https://example.com) [self](#top)\n"
        "# Top\n"
        "[gone](missing.md) [bad anchor](other.md#nope) `[in code](missing-too.md)`\n"
        "```\n[fenced](also-missing.md)\n```\n"
    )
    assert broken_links(doc, text) == [
        "missing.md (no such file)",
        "other.md#nope (no heading #nope in other.md)",
    ]


def test_slug_follows_github() -> None:
    assert slug("Guarantees, and why they hold") == "guarantees-and-why-they-hold"
    assert slug("The lake (`lake/`): exactly-once Parquet files") == (
        "the-lake-lake-exactly-once-parquet-files"
    )
    assert slug("`price_move` — a move large for *this* market") == (
        "price_move--a-move-large-for-this-market"
    )


# -- check 2: every ADR the issue asks for exists, in the house format ----------------------------

# Issue 9 §3: one record per key decision, found by keywords of its file name.
REQUIRED_ADRS: dict[str, tuple[str, ...]] = {
    "streaming and batch separated": ("streaming", "batch", "separated"),
    "Redpanda in production, Tansu embedded": ("redpanda", "tansu"),
    "exchange-native raw frames": ("exchange-native", "raw"),
    "the exactly-once lake": ("exactly-once", "lake"),
    "gap backfill": ("gap", "backfill"),
    "observational alerts": ("observational", "alerts"),
    "DuckDB by default, BigQuery or Snowflake in production": ("duckdb",),
    "systemd operations": ("systemd",),
}
ADR_SECTIONS = ("## Context", "## Decision", "## Consequences", "## Alternatives considered")
_ADR_NAME = re.compile(r"^\d{4}-[a-z0-9-]+\.md$")


def adr_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.md") if _ADR_NAME.match(p.name))


def missing_adrs(names: list[str]) -> list[str]:
    return [
        decision
        for decision, words in REQUIRED_ADRS.items()
        if not any(all(word in name for word in words) for name in names)
    ]


def adr_format_problems(path: Path, text: str, *, alternatives: bool) -> list[str]:
    number = path.name[:4]
    problems = []
    if not text.startswith(f"# ADR {number}: "):
        problems.append(f"{path.name}: title must start with '# ADR {number}: '")
    if not re.search(r"^Status: \S", text, re.MULTILINE):
        problems.append(f"{path.name}: no 'Status:' line")
    wanted = ADR_SECTIONS if alternatives else ADR_SECTIONS[:3]
    problems += [f"{path.name}: no '{s}'" for s in wanted if not re.search(f"^{s}$", text, re.M)]
    return problems


def test_every_adr_of_the_issue_exists() -> None:
    assert missing_adrs([p.name for p in adr_files(ADR_DIR)]) == []


def test_adrs_have_the_house_format_and_are_indexed() -> None:
    index = (ADR_DIR / "README.md").read_text(encoding="utf-8")
    problems = []
    for path in adr_files(ADR_DIR):
        text = path.read_text(encoding="utf-8")
        listed = any(all(w in path.name for w in words) for words in REQUIRED_ADRS.values())
        problems += adr_format_problems(path, text, alternatives=listed)
        if f"({path.name})" not in index:
            problems.append(f"{path.name}: not linked from docs/adr/README.md")
    numbers = [p.name[:4] for p in adr_files(ADR_DIR)]
    if len(numbers) != len(set(numbers)):
        problems.append(f"duplicate ADR numbers: {numbers}")
    assert problems == []


def test_adr_checks_are_not_vacuous(tmp_path: Path) -> None:
    names = ["0003-redpanda-in-production-tansu-embedded.md", "0010-systemd-operations.md"]
    missing = missing_adrs(names)
    assert "the exactly-once lake" in missing
    assert "systemd operations" not in missing
    thin = tmp_path / "0042-thin.md"
    problems = adr_format_problems(thin, "# ADR 0042: x\n\n## Context\n", alternatives=True)
    assert problems == [
        "0042-thin.md: no 'Status:' line",
        "0042-thin.md: no '## Decision'",
        "0042-thin.md: no '## Consequences'",
        "0042-thin.md: no '## Alternatives considered'",
    ]


# -- check 3: every `upbit-pipeline ...` command in the docs exists, with its options -------------

_INVOCATION = re.compile(r"(?:^|(?<=[\s`=(-])|(?<=bin/))upbit-pipeline[ \t]+(.*)$")
_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_END = re.compile(r"`|\s#|\||&&|;|\s>")


def invocations(text: str) -> Iterator[str]:
    """The argument text of each ``upbit-pipeline ARGS`` in code (fenced or inline)."""
    _, code = split_code(text)
    for line in _join_continuations(code):
        match = _INVOCATION.search(line)
        if match:
            yield _END.split(match[1], maxsplit=1)[0].strip()


# Typer vendors its own click; commands are inspected by duck typing, not by class.


def _long_options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return names


def _takes_value(command: Any, option: str) -> bool:
    for param in command.params:
        if option in param.opts and param.param_type_name == "option":
            return not param.is_flag
    return False


def command_problems(root: Any, args: str) -> list[str]:
    """What is wrong with ``upbit-pipeline {args}``: an unknown command, subcommand or option."""
    tokens = [t.strip("[](){}\"'") for t in args.split()]
    command = root
    path: list[str] = []
    problems = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.startswith("--"):
            option = token.split("=", 1)[0]
            if option not in _long_options(command):
                where = " ".join(path) or "(root)"
                problems.append(f"`upbit-pipeline {args}`: {where} has no option {option}")
            elif "=" not in token and _takes_value(command, option):
                i += 1  # its value
            continue
        subcommands: dict[str, Any] | None = getattr(command, "commands", None)
        if subcommands is None:
            continue  # an argument or an option's value
        if not _WORD.match(token):
            break  # a placeholder: <command>, …, D
        sub = subcommands.get(token)
        if sub is None:
            where = " ".join(path) or "upbit-pipeline"
            problems.append(f"`upbit-pipeline {args}`: {where} has no command {token!r}")
            break
        command = sub
        path.append(token)
    return problems


def test_every_documented_command_exists() -> None:
    root = typer.main.get_command(app)
    problems = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in doc_files()
        for args in invocations(path.read_text(encoding="utf-8"))
        for problem in command_problems(root, args)
    ]
    assert problems == []


def test_docs_mention_commands_at_all() -> None:
    """Guards the extraction itself: if it found nothing, the check above would pass vacuously."""
    readme = list(invocations((ROOT / "README.md").read_text(encoding="utf-8")))
    assert any(args.startswith("ops render-units") for args in readme)
    operations = list(invocations((DOCS / "operations.md").read_text(encoding="utf-8")))
    assert any("--prefix upbit-pipeline" in args for args in operations)  # continuation joined


def test_command_check_is_not_vacuous() -> None:
    root = typer.main.get_command(app)
    text = (
        "```bash\n"
        ".venv/bin/upbit-pipeline lake verify --date 2026-01-01   # fine\n"
        "upbit-pipeline --config up.toml config show\n"
        "upbit-pipeline explode --now\n"
        "sudo useradd --home-dir /var/lib/upbit-pipeline --shell /bin/false upbit\n"
        "```\n"
        "Run `upbit-pipeline ops fly`, `upbit-pipeline status --colour`, "
        "`upbit-pipeline-producer.service`, `upbit-pipeline --config FILE <command>`.\n"
    )
    problems = [p for args in invocations(text) for p in command_problems(root, args)]
    assert problems == [
        "`upbit-pipeline explode --now`: upbit-pipeline has no command 'explode'",
        "`upbit-pipeline ops fly`: ops has no command 'fly'",
        "`upbit-pipeline status --colour`: status has no option --colour",
    ]


# -- check 4: topic names in architecture.md are the code's ----------------------------------------

_TOPIC = re.compile(r"(?<![\w./-])upbit\.([a-z][a-z_]*)\b")


def topics_mentioned(text: str) -> set[str]:
    """``upbit.X`` names, except references to the ``upbit`` Python package's modules."""
    modules = {p.stem for p in UPBIT_PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    return {f"upbit.{name}" for name in _TOPIC.findall(text) if name not in modules}


def test_architecture_topics_are_the_codes() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    defined = set(TopicNames().all())
    mentioned = topics_mentioned(text)
    assert mentioned - defined == set(), "topics in architecture.md that the code does not define"
    assert defined - mentioned == set(), "topics the code defines that architecture.md omits"


def test_topic_check_is_not_vacuous() -> None:
    text = "`upbit.trade`, `upbit.trades`, upbit.decode, https://api.upbit.com, upbit_pipeline.x"
    assert topics_mentioned(text) == {"upbit.trade", "upbit.trades"}
    assert topics_mentioned(text) - set(TopicNames().all()) == {"upbit.trades"}


# -- check 5: the `make` targets the README names exist --------------------------------------------


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9_-]*):", makefile, re.MULTILINE))


def unknown_make_targets(text: str, targets: set[str]) -> list[str]:
    _, code = split_code(text)
    named = {m for line in code for m in re.findall(r"(?:^|(?<=\s))make ([a-z][a-z0-9_-]*)", line)}
    return sorted(named - targets)


def test_readme_make_targets_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert unknown_make_targets(readme, make_targets()) == []
    assert {"demo", "test", "bench"} <= make_targets()


def test_make_target_check_is_not_vacuous() -> None:
    assert unknown_make_targets("`make demo` and `make deploy`", {"demo"}) == ["deploy"]
