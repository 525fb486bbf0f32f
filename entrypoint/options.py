"""The one definition of ``entrypoint``'s options and their ``ENTRYPOINT_*`` variables.

``_OPTIONS`` below is the table: every ``run`` option, the render settings
(``--syntax``, ``--only``, ``--output-dir``...) included, and each is also the
environment variable ``ENTRYPOINT_<NAME>`` read with the same rules by every
command: ``run`` (:func:`parse_run_args`) and ``render``/``check``
(:func:`options_from_env`, through :mod:`entrypoint.context.settings`).
Standard library only: PID 1 parses its command line with it.

To add an option: one ``"--opt": ("attr", "kind")`` entry in ``_OPTIONS``, the
attribute with its default in :class:`RunOptions`, and a line in ``USAGE``.

Parsed by hand, not with :mod:`argparse`: argparse (with :mod:`re` and
:mod:`gettext`) roughly doubles the start-up of a process that does nothing
else before exec'ing the app, and these options are a flat list.

Parsing stops at ``--`` or at the first word that is not an option, as
dumb-init does, so ``entrypoint nginx -g 'daemon off;'`` never reads ``-g``.
"""

from __future__ import annotations

from entrypoint import signames as signals
from entrypoint.errors import SettingError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_TEMPLATES_DIR = "/etc/entrypoint/templates"
DEFAULT_HOOKS_DIR = "/etc/entrypoint.d"
DEFAULT_SERVICES_DIR = "/etc/entrypoint/services"
DEFAULT_OUTPUT_DIR = "/"  # the templates directory mirrors the filesystem
SYNTAXES = ("auto", "envsubst", "shell", "jinja")
DEFAULT_FINISH_DIR = "/etc/entrypoint.finish.d"
DEFAULT_FINISH_TIMEOUT = 5.0
DEFAULT_STATE_FILE = "/run/entrypoint/state.json"
#: Mesos' docker executor stops with `docker stop -t 5` unless a kill policy
#: says otherwise; 4 s leaves a second for our own SIGKILL, reaping and exit.
DEFAULT_GRACE_PERIOD = 4.0
RESTART_POLICIES = ("no", "on-failure", "always")
RESTART_RELOAD = 0  # --reload-signal restart

USAGE = """\
usage: entrypoint run [OPTIONS] [--] COMMAND [ARG...]

Renders templates, runs hooks, waits for dependencies, then runs COMMAND as a
well-behaved PID 1: forwards signals, reaps zombies, stops the whole process
tree gracefully.  Every option can also be set as ENTRYPOINT_<NAME>
(e.g. ENTRYPOINT_GRACE_PERIOD=10), read the same way by render and check; list
values there are separated by commas or whitespace, except the path lists
ENTRYPOINT_TEMPLATES (for --template), ENTRYPOINT_ENV_FILE and ENTRYPOINT_LOG_FILE:
commas only.

options:
  --template SRC[:DEST]     render before the start (repeatable)
  --templates-dir DIR       render every template there (default /etc/entrypoint/templates)
  --env-file FILE           dotenv file whose variables feed the templates (repeatable; watched)
  --output-dir DIR          where the templates directory renders to (default /)
  --syntax S                auto | envsubst | shell | jinja (default auto: .j2/.jinja -> jinja)
  --strict / --lenient      an unset variable without a default is / is not an error
  --only NAMES              substitute only these variables (shell/envsubst; repeatable)
  --prefix P                substitute only variables starting with P (shell/envsubst; repeatable)
  --braced-only             substitute only ${NAME} forms; bare $name stays (nginx)
  --hooks-dir DIR           *.sh run, *.envsh sourced, version order (default /etc/entrypoint.d)
  --services-dir DIR        one s6-style service directory per service (default /etc/entrypoint/services)
  --wait URL                tcp://host:port, http(s)://..., unix:///socket, file:///path (repeatable)
  --wait-timeout SECONDS    give up waiting (exit 69) after this long (default 60)
  --grace-period SECONDS    stop signal -> SIGKILL of the whole tree (default 4)
  --stop-delay SECONDS      keep the app running this long after the first stop signal (default 0)
  --finish-dir DIR          *.sh run once the app's tree is gone (default /etc/entrypoint.finish.d)
  --finish-timeout SECONDS  each finish hook is SIGKILLed after this long (default 5)
  --log-file PATH           copy the lines the app writes to PATH to stdout (repeatable)
  --state-file PATH         where PID 1 publishes its state ('' = nowhere; default /run/entrypoint/state.json)
  --signal-group            forward signals to the child's process group, not just the child
  --rewrite-signal FROM:TO  forward FROM as TO; TO=0 drops it (repeatable)
  --remap-exit CODE         the child's exit code CODE becomes 0 (repeatable)
  --restart POLICY          no | on-failure | always (default no)
  --restart-max N           give up after N restarts in a row, 0 = never (default 5)
  --restart-delay SECONDS   first backoff delay, doubled each time (default 1)
  --restart-delay-max SECONDS  backoff cap (default 30)
  --restart-reset SECONDS   a run this long resets the backoff (default 10)
  --watch                   re-render on template change, then send the reload signal
  --reload-signal SIG       signal sent after a re-render, or `restart` (default HUP)
  --watch-quiet SECONDS     re-render once changes pause this long (default 0.2)
  --watch-max-wait SECONDS  ... or at the latest this long after the first change (default 2)
  --check-cmd CMD           shell command run on the staged files before they are installed
  --user USER[:GROUP]       run the app (and each restart) as USER; PID 1, render, hooks stay root
  --expand-args             expand $VAR, ${VAR:-default}, $$ in each ARG after COMMAND (shell syntax)
  --secret NAME             export NAME from the file NAME_FILE names; NAME_FILE removed (repeatable)
  --termination-log PATH    a failed start's errors also go there (default /dev/termination-log
                            when it exists and is writable; empty = off)
  -v, --verbose             say what happens
  -q, --quiet               errors only
  -h, --help                this text
"""


class RunOptions:
    """Everything `run` needs, already validated."""

    def __init__(self) -> None:
        self.command: list[str] = []
        self.templates: list[str] = []
        self.templates_dir: str = DEFAULT_TEMPLATES_DIR
        self.env_files: list[str] = []
        self.output_dir: str = DEFAULT_OUTPUT_DIR
        self.syntax: str = "auto"
        self.strict: bool | None = None  # None: the syntax's default (Jinja strict, shell/envsubst not)
        self.only: list[str] = []
        self.prefix: list[str] = []
        self.braced_only: bool = False
        self.hooks_dir: str = DEFAULT_HOOKS_DIR
        self.services_dir: str = DEFAULT_SERVICES_DIR
        self.waits: list[str] = []
        self.wait_timeout: float = 60.0
        self.grace_period: float = DEFAULT_GRACE_PERIOD
        self.stop_delay: float = 0.0
        self.finish_dir: str = DEFAULT_FINISH_DIR
        self.finish_timeout: float = DEFAULT_FINISH_TIMEOUT
        self.log_files: list[str] = []
        self.state_file: str = DEFAULT_STATE_FILE
        self.signal_group: bool = False
        self.rewrites: dict[int, int] = {}
        self.remap_exit: set[int] = set()
        self.restart: str = "no"
        self.restart_max: int = 5
        self.restart_delay: float = 1.0
        self.restart_delay_max: float = 30.0
        self.restart_reset: float = 10.0
        self.watch: bool = False
        self.watch_quiet: float = 0.2
        self.watch_max_wait: float = 2.0
        self.check_cmd: str | None = None
        self.user: str | None = None
        self.expand_args: bool = False
        self.secrets: list[str] = []
        #: None: the default (/dev/termination-log when writable); "": off
        self.termination_log: str | None = None
        self.reload_signal: int = signals.SIGHUP
        self.verbosity: int = 1
        self.help: bool = False
        #: attributes set on the command line (the render child reads the environment itself)
        self.from_cli: set[str] = set()


# option -> (attribute, kind); kinds: flag, str, list, float, int, and custom parsers below.
# The environment variable is ENTRYPOINT_<OPTION> (see env_name); lists there: see split_env_list.
_OPTIONS: dict[str, tuple[str, str]] = {
    "--template": ("templates", "list"),
    "--templates-dir": ("templates_dir", "str"),
    "--env-file": ("env_files", "list"),
    "--output-dir": ("output_dir", "str"),
    "--syntax": ("syntax", "syntax"),
    "--strict": ("strict", "flag"),
    "--lenient": ("strict", "lenient"),
    "--only": ("only", "list"),
    "--prefix": ("prefix", "list"),
    "--braced-only": ("braced_only", "flag"),
    "--hooks-dir": ("hooks_dir", "str"),
    "--services-dir": ("services_dir", "str"),
    "--wait": ("waits", "list"),
    "--wait-timeout": ("wait_timeout", "float"),
    "--grace-period": ("grace_period", "float"),
    "--stop-delay": ("stop_delay", "float"),
    "--finish-dir": ("finish_dir", "str"),
    "--finish-timeout": ("finish_timeout", "float"),
    "--log-file": ("log_files", "list"),
    "--state-file": ("state_file", "str"),
    "--signal-group": ("signal_group", "flag"),
    "--rewrite-signal": ("rewrites", "rewrite"),
    "--remap-exit": ("remap_exit", "code"),
    "--restart": ("restart", "policy"),
    "--restart-max": ("restart_max", "int"),
    "--restart-delay": ("restart_delay", "float"),
    "--restart-delay-max": ("restart_delay_max", "float"),
    "--restart-reset": ("restart_reset", "float"),
    "--watch": ("watch", "flag"),
    "--watch-quiet": ("watch_quiet", "float"),
    "--watch-max-wait": ("watch_max_wait", "float"),
    "--check-cmd": ("check_cmd", "str"),
    "--user": ("user", "str"),
    "--expand-args": ("expand_args", "flag"),
    "--secret": ("secrets", "list"),
    "--termination-log": ("termination_log", "str"),
    "--reload-signal": ("reload_signal", "reload"),
    "--verbose": ("verbosity", "verbose"),
    "--quiet": ("verbosity", "quiet"),
    "--help": ("help", "flag"),
}
_SHORT = {"-v": "--verbose", "-q": "--quiet", "-h": "--help"}
_LIST_KINDS = ("list", "rewrite", "code")
_NO_VALUE = ("flag", "lenient", "verbose", "quiet")


#: Where the name is not the option's: the render step's own setting is a comma list.
_ENV_NAMES = {"--template": "ENTRYPOINT_TEMPLATES"}
_COMMA_LISTS = ("rewrites", "remap_exit", "secrets")  # commas or spaces


def env_name(option: str) -> str:
    return _ENV_NAMES.get(option) or "ENTRYPOINT_" + option[2:].upper().replace("-", "_")


def given_or_env(value: object, option: str, environ: Mapping[str, str]) -> str | None:
    """An option with no default of its own: the command line's ``value``, else ``option``'s
    ``ENTRYPOINT_*`` variable, else None (``check --services-dir``: a check of templates alone
    must not depend on what the CI host's ``/etc/entrypoint/services`` holds)."""
    if value:
        return str(value)
    return environ.get(env_name(option)) or None


#: Lists of paths split at commas only (a path may contain a space); every other list at commas and
#: whitespace alike.  The same rule for a variable whichever command reads it.
_PATH_LISTS = ("templates", "env_files", "log_files")


def split_env_list(value: str, *, paths: bool = False) -> list[str]:
    """The items of a list variable: ``"143, 130"``, ``"tcp://db:5432 http://api/health"``,
    ``" A, B  C"``; with ``paths``, ``"/var/log/a b.log,/var/log/c.log"`` (commas only)."""
    if paths:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value.replace(",", " ").split()


def _split_env_list(attr: str, value: str) -> list[str]:
    return split_env_list(value, paths=attr in _PATH_LISTS)


def _parse_bool(text: str, where: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{where}: expected true or false, got {text!r}")


def _number(text: str, where: str, kind: str) -> float:
    try:
        value = float(text) if kind == "float" else int(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if value < 0 or value != value or value == float("inf"):
        raise UsageError(f"{where}: must be a finite number >= 0, got {text!r}")
    return value


def _rewrite(text: str, where: str) -> tuple[int, int]:
    src, sep, dst = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        frm, to = signals.parse(src), signals.parse(dst, allow_zero=True)
    except ValueError:
        raise UsageError(f"{where}: expected FROM:TO signals (TO=0 drops), got {text!r}") from None
    if frm in (signals.SIGKILL, signals.SIGSTOP, signals.SIGCHLD):
        raise UsageError(f"{where}: {signals.name(frm)} cannot be rewritten")
    return frm, to


def _code(text: str, where: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) <= 255:
        raise UsageError(f"{where}: expected an exit code 0-255, got {text!r}")
    return int(text)


class _Parser:
    """Applies values to a RunOptions; the same rules for the CLI and the environment."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        self.seen_lists: set[str] = set()

    def apply(self, option: str, value: str | None, where: str, *, from_cli: bool) -> None:
        if from_cli:
            self._apply(option, value, where, from_cli=True)
            return
        try:
            self._apply(option, value, where, from_cli=False)
        except UsageError as exc:  # a bad ENTRYPOINT_* value is configuration: exit 78 everywhere
            raise SettingError(str(exc)) from None

    def _apply(self, option: str, value: str | None, where: str, *, from_cli: bool) -> None:
        attr, kind = _OPTIONS[option]
        o = self.opts
        if kind in _NO_VALUE:
            on = True if value is None else _parse_bool(value, where)
            if kind == "flag":
                setattr(o, attr, on)
            elif kind == "lenient":
                if on:
                    setattr(o, attr, False)
            elif on:
                o.verbosity = 2 if kind == "verbose" else 0
            if from_cli:
                o.from_cli.add(attr)
            return
        assert value is not None
        if from_cli:
            o.from_cli.add(attr)
        if kind in _LIST_KINDS and from_cli and attr not in self.seen_lists:
            self.seen_lists.add(attr)  # the command line replaces the environment's list
            getattr(o, attr).clear()
        items = _split_env_list(attr, value) if not from_cli and kind in _LIST_KINDS else [value]
        for item in items:
            self._apply_one(attr, kind, item, where)

    def _apply_one(self, attr: str, kind: str, value: str, where: str) -> None:
        o = self.opts
        if kind == "list":
            getattr(o, attr).append(value)
        elif kind == "str":
            setattr(o, attr, value)
        elif kind in ("float", "int"):
            setattr(o, attr, _number(value, where, kind))
        elif kind == "rewrite":
            frm, to = _rewrite(value, where)
            o.rewrites[frm] = to
        elif kind == "code":
            o.remap_exit.add(_code(value, where))
        elif kind == "policy":
            if value not in RESTART_POLICIES:
                raise UsageError(f"{where}: expected one of {', '.join(RESTART_POLICIES)}, got {value!r}")
            o.restart = value
        elif kind == "reload":
            o.reload_signal = _reload_signal(value, where)
        elif kind == "syntax":
            if value not in SYNTAXES:
                raise UsageError(f"{where}: expected one of {', '.join(SYNTAXES)}, got {value!r}")
            o.syntax = value


def _reload_signal(value: str, where: str) -> int:
    if value.strip().lower() == "restart":
        return RESTART_RELOAD
    try:
        return signals.parse(value)
    except ValueError:
        raise UsageError(f"{where}: expected a signal or `restart`, got {value!r}") from None


def _split_cli(argv: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Separate ``(option, value)`` pairs from the command, validating option names."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return pairs, argv[i + 1:]
        if not word.startswith("-") or word == "-":
            return pairs, argv[i:]
        option, eq, inline = word.partition("=")
        option = _SHORT.get(option, option)
        if option not in _OPTIONS:
            raise UsageError(f"run: unknown option {word!r} (put the command after `--`)")
        kind = _OPTIONS[option][1]
        if kind in _NO_VALUE:
            if eq:
                raise UsageError(f"run: {option} takes no value")
            pairs.append((option, None))
        elif eq:
            pairs.append((option, inline))
        else:
            if i + 1 >= len(argv):
                raise UsageError(f"run: {option} needs a value")
            i += 1
            pairs.append((option, argv[i]))
        i += 1
    return pairs, []


def _apply_environment(parser: _Parser, environ: Mapping[str, str]) -> None:
    for option in _OPTIONS:
        if option == "--help":
            continue
        var = env_name(option)
        if var in environ:
            parser.apply(option, environ[var], var, from_cli=False)


def options_from_env(environ: Mapping[str, str]) -> RunOptions:
    """The ``ENTRYPOINT_*`` settings alone (``render``/``check``); a bad value is a SettingError (78)."""
    opts = RunOptions()
    _apply_environment(_Parser(opts), environ)
    return opts


NO_COMMAND = "run: no command given (usage: entrypoint run [OPTIONS] [--] COMMAND [ARG...])"


def parse_run_args(argv: list[str], environ: Mapping[str, str], *,
                   command_optional: bool = False) -> RunOptions:
    """Environment first (defaults), then the command line on top.

    ``command_optional``: the caller checks for COMMAND itself (``run`` with services needs none).
    """
    opts = RunOptions()
    parser = _Parser(opts)
    _apply_environment(parser, environ)
    pairs, command = _split_cli(argv)
    for option, value in pairs:
        parser.apply(option, value, option, from_cli=True)
    opts.command = command
    if not command and not opts.help and not command_optional:
        raise UsageError(NO_COMMAND)
    if opts.restart_delay_max < opts.restart_delay:
        opts.restart_delay_max = opts.restart_delay
    return opts
