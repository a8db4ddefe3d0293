"""The `qa` command. Imports stay inside the commands so `qa --help` never loads torch."""

from __future__ import annotations

import argparse
import codecs
import json
import math
import os
import re
import sys
from pathlib import Path

from qa import __version__

DESCRIPTION = "Ask questions about a folder of documents; answers are cited sentences from them."


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    from qa.config import user_data_dir

    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--corpus", metavar="DIR", default=default,
                        help="folder of documents (default: $QA_CORPUS or ./seeds)")
    parser.add_argument("--index", metavar="DIR", default=default,
                        help="index folder (default: $QA_INDEX, else the corpus folder's own: "
                             "./embeddings for ./seeds, for any other folder one in "
                             f"{user_data_dir() / 'indexes'}; `qa stats` names it)")
    parser.add_argument("--store", metavar="URL", dest="index", type=_store_url,
                        default=argparse.SUPPRESS,
                        help="keep the index in PostgreSQL + pgvector instead of a folder "
                             "(default: $QA_STORE; postgresql://user@host/db, see README)")
    parser.add_argument("--max-file-mb", metavar="MB", type=_megabytes, default=default,
                        help="skip files larger than this (default: 50)")


def _store_url(value: str) -> str:
    from qa.config import STORE_SCHEMES

    if not value.startswith(STORE_SCHEMES):
        raise argparse.ArgumentTypeError(f"not a postgresql:// URL: {value!r}")
    return value


def _watch_option(parser: argparse.ArgumentParser, suppress: bool) -> None:
    parser.add_argument("--no-watch", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="chat app: do not update the index by itself when documents change "
                             "(it offers ctrl+r instead)")


class _Parser(argparse.ArgumentParser):
    """A usage error is one line, as every error of qa is (argparse's own sub-parsers are made
    of this class too)."""

    def error(self, message: str):
        self.exit(2, f"qa: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qa", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"qa {__version__}")
    _common(parser, suppress=False)
    _watch_option(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, suppress=True)
        return p

    _watch_option(command("chat", "open the chat app (the default when no command is given)"),
                  suppress=True)

    p = command("index", "build or update the index (incremental; only changed files are embedded)")
    p.add_argument("--rebuild", action="store_true", help="discard the index and build it anew")
    p.add_argument("--json", action="store_true", help="print one JSON object with the counts")
    p.add_argument("--watch", action="store_true",
                   help="then keep the index current as files are added, edited, moved or "
                        "deleted, one line per update (ctrl+c stops)")

    p = command("search", "show the passages that best match a query (retrieval only)")
    p.add_argument("query")
    p.add_argument("-k", type=_at_least_one, default=5, help="number of passages (default: 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _scope_options(p)

    p = command("ask", "answer a question with cited sentences from the documents")
    p.add_argument("question", help='the question, or "-" to read one question per line from stdin')
    p.add_argument("--json", action="store_true", help="print JSON (one object per question)")
    _scope_options(p)

    p = command("stats", "describe the index: documents, chunks, model, size, staleness")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("show", "print a document's text as indexed (what citation offsets point into)")
    p.add_argument("source", help="path relative to the corpus folder, as in citations")
    p.add_argument("--start", type=int, default=None, help="first character (default: 0)")
    p.add_argument("--end", type=int, default=None, help="end character, exclusive")

    for name, help in [("serve", "answer over HTTP: a JSON API, OpenAI-compatible chat, index "
                                 "updates with progress (and with --web the chat app)"),
                       ("web", "serve the chat app to a browser (and the HTTP API beside it)")]:
        p = command(name, help)
        p.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1; any other needs a token)")
        p.add_argument("--port", type=_port, default=8765, help="port (default: 8765)")
        p.add_argument("--token", default=None,
                       help="require 'Authorization: Bearer TOKEN' on every request "
                            "(default: $QA_TOKEN)")
        if name == "serve":
            p.add_argument("--web", action="store_true", help="also serve the chat app at /web")
        p.add_argument("--quiet", action="store_true", help="log errors only, not each request")

    command("mcp", "serve tools search, ask and show (and the documents) to an MCP client "
                   "over stdio")
    return parser


def _scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="scope_paths", metavar="PATH", action="append", default=[],
                        help="only the documents in this folder, file or glob, relative to the "
                             "corpus folder (repeatable: any of them)")
    parser.add_argument("--since", metavar="YYYY-MM-DD", type=_day, default=None,
                        help="only documents dated that day or later (the date a file states, "
                             "else its modification time)")


def _day(value: str) -> str:
    from datetime import date

    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, not {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in (None, "chat") and getattr(args, "no_watch", False):
        parser.error(f"--no-watch is for the chat app (qa, qa chat), not qa {args.command}")
    from qa.errors import QAError

    _tolerate_any_terminal(args)

    try:
        handler = COMMANDS[args.command or "chat"]
        return handler(args) or 0
    except QAError as exc:
        print(f"qa: {shown(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a folder that is a file, no permission, a full disk: one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"qa: {shown(f'{exc.strerror or exc}{where}')}", file=sys.stderr)
        return 1


def _tolerate_any_terminal(args) -> None:
    """Output a terminal's encoding cannot show (an ASCII locale) is escaped ("caf\\xe9"), never
    a crash; and the UTF-8 a user typed reaches qa as UTF-8 in such a locale too."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    for name in ("question", "query", "source"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(args, name, _typed_text(value))
    if getattr(args, "scope_paths", None):
        args.scope_paths = [_typed_text(p) for p in args.scope_paths]


def _typed_text(value: str) -> str:
    """A command-line argument as text: in an ASCII locale Python reads its UTF-8 bytes as
    escapes (lone surrogates), which are read back here."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(value).decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates no locale makes (the engine replaces them)
        return value


def _json(data) -> str:
    """One line of JSON; where stdout cannot encode a character, JSON's own escape (\\u00e9)."""
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(data)
    return text


def _engine(args):
    from qa.engine import Engine

    kwargs = {}
    if getattr(args, "max_file_mb", None) is not None:
        # 1e308 MB is no limit at all, and more bytes than a float holds
        kwargs["max_bytes"] = int(min(args.max_file_mb * 1024 * 1024, sys.maxsize))
    engine = Engine.open(getattr(args, "corpus", None), getattr(args, "index", None), **kwargs)
    _check_corpus(engine.corpus, args)
    return engine


def _check_corpus(corpus: Path, args) -> None:
    """Every command names its folder: answering from an index while the folder given is
    missing (a typo in --corpus) would quietly answer about some other folder."""
    from qa.errors import QAError

    if corpus.is_dir():
        return
    if not corpus.exists() and getattr(args, "command", None) != "index" and _store_named(args):
        return  # a store holds the documents' text: who only reads it needs no copy of the folder
    if corpus.exists():
        raise QAError(f"the corpus is not a folder: {corpus}")
    if getattr(args, "corpus", None):
        raise QAError(f"corpus folder not found: {corpus}")
    if os.environ.get("QA_CORPUS"):
        raise QAError(f"corpus folder not found: {corpus} (from $QA_CORPUS); give another with "
                      "--corpus DIR")
    # The default, ./seeds, is missing: qa was run outside the folder that holds it.
    raise QAError(f"corpus folder not found: {corpus} (qa looks for it in the current folder); "
                  "name one with --corpus DIR")


def _store_named(args) -> bool:
    """Whether the index is a PostgreSQL store (--store, --index URL or $QA_STORE)."""
    from qa.config import STORE_SCHEMES

    index = getattr(args, "index", None) or os.environ.get("QA_STORE") or ""
    return str(index).startswith(STORE_SCHEMES)


def _warn(source: str, reason: str) -> None:
    """A skipped file (``source``), or with no source a notice about the build itself."""
    if source:
        print(f"qa: warning: skipped {shown(source)}: {shown(reason)}", file=sys.stderr)
    else:
        print(f"qa: warning: {shown(reason)}", file=sys.stderr)


class _ProgressBar:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.drawn = False
        self.phase: tuple[str, float] | None = None  # the phase shown, and when it began

    def __call__(self, progress) -> None:
        if not self.enabled:
            return
        import time

        from qa.index.reports import time_left

        if self.phase is None or self.phase[0] != progress.phase:
            self.phase = (progress.phase, time.monotonic())
        if progress.total <= 0:  # a step without counts ("loading the model")
            sys.stderr.write(f"\r\033[K{progress.phase}… ")
            sys.stderr.flush()
            self.drawn = True
            return
        width = 30
        filled = int(width * progress.done / progress.total)
        bar = "█" * filled + "░" * (width - filled)
        unit = f" {progress.unit}" if progress.unit else ""
        left = time_left(progress, time.monotonic() - self.phase[1])
        sys.stderr.write(f"\r\033[K{progress.phase:>9} {bar} {progress.done}/{progress.total}{unit} "
                         + (f"{left} " if left else ""))
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _sync(engine, rebuild: bool = False, warn=_warn):
    bar = _ProgressBar()

    def waiting() -> None:
        print("qa: another qa index is running; waiting for it to finish", file=sys.stderr)

    try:
        return engine.sync(rebuild=rebuild, progress=bar, warn=warn, on_wait=waiting)
    finally:
        bar.close()


def cmd_index(args) -> int:
    engine = _engine(args)
    if args.rebuild:
        _confirm_repointing(engine)
    from qa.index.watcher import NewWarnings

    told = NewWarnings()  # watching, a skipped file is named once, not on every update
    report = _sync(engine, rebuild=args.rebuild, warn=told.filter(_warn) if args.watch else _warn)
    told.finished()
    if args.json:
        print(json.dumps(report.to_json()), flush=True)
    else:
        print(report.summary() if report.changed or report.chunks_embedded
              else f"index is up to date: {report.documents} documents, {report.chunks} chunks")
        for line in report.changes():
            print(f"  {shown(line)}")
    if args.watch:
        return _watch(engine, args.json, told)
    return 0


def _watch(engine, as_json: bool, told=None) -> int:
    """Keep the index current, one line per update, until ctrl+c."""
    from datetime import datetime

    bar = _ProgressBar()

    def updated(report) -> None:
        bar.close()
        if as_json:
            print(json.dumps(report.to_json()), flush=True)
            return
        changes = "; ".join(report.changes(limit=5))
        line = f"{datetime.now():%H:%M:%S} {report.summary()}" + (f" ({changes})" if changes else "")
        print(shown(line), flush=True)

    def failed(exc) -> None:
        bar.close()
        print(f"qa: warning: update failed: {shown(str(exc))}; still watching", file=sys.stderr)

    print(f"qa: watching {shown(str(engine.corpus))} (ctrl+c stops)", file=sys.stderr, flush=True)
    try:
        engine.watch(updated, on_error=failed, progress=bar, warn=_warn, warnings=told)
    except KeyboardInterrupt:
        bar.close()
        # An update cut short leaves the generation before it live (see qa/index/generations.py).
        print("qa: stopped watching; the index is as the last finished update left it",
              file=sys.stderr)
    return 0


def _confirm_repointing(engine) -> None:
    """--rebuild of an index built for another folder takes that folder's index away: only after
    a yes on a terminal, to a question naming both folders."""
    built_for = engine.foreign_index_folder()
    if built_for is None:
        return
    from qa.errors import QAError

    corpus = os.path.abspath(engine.corpus)
    if sys.stdin.isatty() and sys.stderr.isatty():
        sys.stderr.write(f"qa: the index in {engine.index_dir} holds the documents of {built_for}. "
                         f"Rebuild it for {corpus}? {built_for} loses its index. [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return
    raise QAError(f"the index in {engine.index_dir} was built for the folder {built_for} and was "
                  f"left as it is; to index {corpus}, leave out --index (each folder gets its own), "
                  "or confirm the rebuild on a terminal")


def _ready_engine(args, build_if_missing: bool):
    """An engine whose index exists; builds it first (for ask) or explains how (for search)."""
    from qa.errors import IndexMissing, QAError

    from qa.index import generations, locations, locking, store
    from qa.index.indexer import expected_params
    from qa.index.reports import name_list

    engine = _engine(args)
    if not engine.index_exists():
        if isinstance(engine.index_dir, Path):  # a garbled pointer is damage, not a missing index
            generations.current_path(engine.index_dir)
        if not build_if_missing:
            raise IndexMissing(f"no index in {engine.index_dir}; run `qa index` first")
        print(f"qa: no index in {engine.index_dir} yet; building it", file=sys.stderr)
        _sync(engine)
        return engine
    if build_if_missing and engine.index_outdated():
        manifest = locations.read_manifest(engine.index_dir)
        # An older schema, or vectors of another encoder: sync rebuilds it and says so.
        older_schema = store.is_older_schema(manifest) or store.other_encoder(
            manifest, expected_params(engine.embedder))
        # An index of an older schema cannot be read as it is: sync rebuilds it, or says why not.
        if older_schema or not isinstance(engine.index_dir, Path) \
                or locking.writable(engine.index_dir):
            if not older_schema:  # sync says that one
                print(f"qa: the index in {engine.index_dir} was made by an older qa; updating it "
                      "(nothing is embedded again)", file=sys.stderr)
            _sync(engine)
            return engine
        print(f"qa: warning: the index in {engine.index_dir} was made by an older qa and is "
              "read-only; answering from it as it is", file=sys.stderr)
    engine.snapshot  # load and verify first: damage is the one thing to report
    try:
        changed = engine.changed_files()
    except QAError:
        changed = []
    if changed:
        print(f"qa: warning: {len(changed)} corpus file(s) changed since the index was built "
              f"({shown(name_list(changed, 5))}); answering from the existing index (run `qa index` to "
              "update)",
              file=sys.stderr)
    return engine


def _at_least_one(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {value!r}")
    return number


def _megabytes(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (0 < number < math.inf):  # also refuses nan, and 1e400 (which is inf)
        raise argparse.ArgumentTypeError(f"expected a number of MB greater than 0, not {value!r}")
    return number


def cmd_search(args) -> int:
    engine = _ready_engine(args, build_if_missing=False)
    # A query without a word (empty, punctuation, emoji) matches nothing, rather than whatever
    # passages happen to lie nearest to an empty vector.
    has_words = any(ch.isalnum() for ch in args.query)
    scope = engine.scope(args.scope_paths, args.since)
    engine.scoped(scope)  # a scope that holds no document is an error, whatever the query
    passages = engine.search(args.query, k=args.k, scope=scope) if has_words else []
    if args.json:
        print(_json({"query": args.query, "results": [p.to_json() for p in passages]}))
        return 0
    for i, p in enumerate(passages, 1):
        where = f" {shown(str(p.locator))}" if p.locator else ""
        print(f"{i}. {shown(p.source)}:{p.line} [{p.start}:{p.end}]{where} score {p.score:.4f}")
        print(_indent(shown(p.text, lines=True)))
        print()
    if not passages:
        print("no matching passages" if has_words else "no matching passages: the query has no words")
    return 0


def cmd_ask(args) -> int:
    engine = _ready_engine(args, build_if_missing=True)
    scope = engine.scope(args.scope_paths, args.since)
    engine.scoped(scope)  # a scope that holds no document is an error, before any question
    if args.question == "-":
        return _ask_stream(engine, args.json, scope)
    answer = engine.ask(args.question, scope=scope)
    if args.json:
        print(_json(answer.to_json()))
    else:
        print(format_answer(answer))
    return 0  # a declined question is an answer too ("The documents do not seem to cover this.")


def _ask_stream(engine, as_json: bool, scope=None) -> int:
    from qa.engine import Conversation

    engine.load()
    conversation = Conversation(engine, record=False, scope=scope)
    if hasattr(sys.stdin, "reconfigure"):
        # Undecodable bytes must not end the stream; in an ASCII locale, questions are UTF-8.
        ascii_locale = codecs.lookup(sys.stdin.encoding or "ascii").name == "ascii"
        sys.stdin.reconfigure(encoding="utf-8" if ascii_locale else None, errors="replace")
    for line in sys.stdin:
        question = line.strip()
        if not question:
            conversation.reset()
            continue
        answer = conversation.ask(question)
        print(_json(answer.to_json()) if as_json
              else format_answer(answer) + "\n", flush=True)
    return 0


def format_answer(answer) -> str:
    lines = [shown(answer.text, lines=True)]
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            where = f"{shown(c.source)}, line {c.line}" + (f", page {c.page}" if c.page else "") \
                + (f", {shown(str(c.locator))}" if c.locator else "")
            lines.append(f"[{c.n}] {where} [{c.start}:{c.end}]")
            lines.append(_indent(shown(c.text, lines=True)))
    elif answer.passages and not answer.found:
        lines.append("")
        lines.append("Closest passages:")
        for p in answer.passages[:3]:
            line, lead = p.lead()
            snippet = " ".join(lead.split())
            cut = shown(snippet[:160]) + ("…" if len(snippet) > 160 else "")
            lines.append(f"- {shown(p.source)}, line {line}: {cut}")
    return "\n".join(lines)


# What moves or reorders a terminal's text: C0 and C1 controls, line and paragraph separators,
# and the bidi controls (U+202E prints what follows backwards, so a name could fake another).
_SEPARATORS_AND_BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_SEPARATORS_AND_BIDI}]")
_UNSAFE_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_SEPARATORS_AND_BIDI}]")


def shown(text: str, lines: bool = False) -> str:
    """``text`` as human output prints it: each such character as its escape ("\\n",
    "\\u202e"); with ``lines``, newlines and tabs (of a document's text) are kept. JSON output
    needs none of this: JSON escapes them itself."""
    pattern = _UNSAFE_IN_LINES if lines else _UNSAFE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def cmd_stats(args) -> int:
    from qa.index.reports import name_list

    from qa.errors import QAError

    engine = _engine(args)
    built_for = engine.foreign_index_folder()
    if built_for is not None:  # as ask and search refuse it: its figures are another folder's
        import shlex

        raise QAError(f"the index in {engine.index_dir} was built for the folder {built_for}, not "
                      f"{os.path.abspath(engine.corpus)} (`qa stats --corpus {shlex.quote(built_for)}` "
                      "describes it); give this folder an index of its own with --index DIR, or "
                      "leave --index out")
    stats = engine.stats(verify=True)  # stats must not describe a damaged index as fine
    if args.json:
        print(json.dumps(stats))
        return 0
    size = stats["size_bytes"] / (1024 * 1024)
    changed = stats["changed_files"]
    print(f"corpus       {shown(stats['corpus'])}")
    print(f"index        {shown(stats['index'])} (generation {stats['generation']}, {size:.1f} MB)")
    print(f"documents    {stats['documents']} ({stats['skipped']} skipped)")
    print(f"chunks       {stats['chunks']}")
    print(f"model        {stats['model']} ({stats['dimension']} dimensions)")
    print(f"built        {stats['built_at']} in {stats['build_seconds']} s")
    print(f"changed      {'unknown' if changed is None else len(changed)} file(s) since the build"
          + (f" ({shown(name_list(changed, 5))})" if changed else ""))
    for source, reason in stats["skipped_files"].items():
        print(f"skipped      {shown(source)}: {shown(reason)}")
    return 0


def cmd_show(args) -> int:
    engine = _engine(args)
    text = engine.span(args.source, args.start, args.end, names=("--start", "--end"))
    # Exactly the text the offsets index, except on a terminal, where it must not move the
    # cursor or print backwards.
    sys.stdout.write(shown(text, lines=True) if sys.stdout.isatty() else text)
    if not text.endswith("\n"):
        sys.stdout.write("\n")
    return 0


def cmd_chat(args) -> int:
    from qa.config import resolve_paths

    _check_corpus(resolve_paths(getattr(args, "corpus", None)).corpus, args)
    restore = _hold_typeahead()
    from qa.tui.app import run

    return run(getattr(args, "corpus", None), getattr(args, "index", None), restore,
               watch=not getattr(args, "no_watch", False))


def _hold_typeahead():
    """Keys typed while the app starts (about half a second) wait for it instead of being echoed
    over the screen: the terminal stops echoing and passes keys on one by one, at once, before
    Textual is imported. Returns what restores the terminal as it was, or None."""
    try:
        import termios
    except ImportError:  # not a POSIX terminal
        return None
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return None
        saved = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[0] &= ~termios.ICRNL  # Enter stays a carriage return, as Textual reads it
        quiet[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except (OSError, ValueError, termios.error):
        return None
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def cmd_serve(args) -> int:
    from qa.serve.run import check_binding, serve

    token = args.token if args.token is not None else os.environ.get("QA_TOKEN") or None
    check_binding(args.host, token)  # before the index is loaded, not after
    engine = _ready_engine(args, build_if_missing=True)
    engine.load()
    serve(engine, args.host, args.port, token, web=args.command == "web" or args.web,
          quiet=args.quiet)
    return 0


def cmd_mcp(args) -> int:
    from qa.serve.mcp_server import run_stdio

    engine = _ready_engine(args, build_if_missing=True)
    run_stdio(engine)
    return 0


COMMANDS = {
    "chat": cmd_chat,
    "index": cmd_index,
    "search": cmd_search,
    "ask": cmd_ask,
    "stats": cmd_stats,
    "show": cmd_show,
    "serve": cmd_serve,
    "web": cmd_serve,
    "mcp": cmd_mcp,
}
