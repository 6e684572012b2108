"""Argument parsing for `bosun` / `kubectl bosun`. Errors are one clear line, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import replace
from datetime import date

from bosun import __version__
from bosun.models.operation import OperationType
from bosun.settings import Settings


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bosun",
        description="Bosun: every change runs as an Operation.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"bosun {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; default: BOSUN_NAMESPACES, else all namespaces)",
    )
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--liveness-port", type=int, help="port of /healthz (0 disables; default 8080)")
    run.add_argument("--metrics-port", type=int, help="port of /metrics (0 disables; default 9090)")
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="act only while holding the leader Lease (the default: BOSUN_LEADER_ELECTION, else on); "
        "--no-leader-elect for one process by hand in local development",
    )
    run.add_argument("--log-format", choices=["json", "plain"], help="log format (default json)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level")

    def plugin_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
        sub.add_argument("--context", help="kubeconfig context to use")
        sub.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
        sub.add_argument("--as", dest="as_user", metavar="USER", help="act as this user (impersonation)")
        return sub

    plugin_command("cancel", "cancel an operation: it stops and rolls back").add_argument("operation")
    approve = plugin_command("approve", "approve the plan an operation awaits (needs the verb approve on operations)")
    approve.add_argument("operation", help="op/NAME or NAME")
    approve.add_argument("--plan", help="approve only if this is still the plan awaited (its digest)")
    waive = plugin_command("override", "start an operation outside its window, or over its downtime budget")
    waive.add_argument("operation", help="op/NAME or NAME")
    waive.add_argument("--window", action="store_true", help="waive the target's maintenance windows")
    waive.add_argument("--budget", action="store_true", help="waive the downtime budget")
    waive.add_argument("--reason", required=True, help="why (recorded with who asked)")
    plugin_command("status", "an operation's steps with timings and its rollback outcome").add_argument("operation")
    logs = plugin_command("logs", "an operation's log; -f follows it until it ends")
    logs.add_argument("operation")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the operation ends")
    logs.add_argument("--tail", type=_count, metavar="N", help="only the last N lines (default: the whole log)")
    logs.add_argument("--timestamps", action="store_true", help="show each line's time (UTC)")
    plan = plugin_command("plan", "what an operation would do, would refuse, and take (a dry run: nothing changes)")
    source = plan.add_mutually_exclusive_group(required=True)
    source.add_argument("-f", "--filename", help="App/Database manifests, as you would kubectl apply them (- : stdin)")
    source.add_argument("--type", choices=sorted(t.value for t in OperationType), help="an operation type")
    plan.add_argument("--target", help="with --type: app/NAME or database/NAME")
    plan.add_argument("--node", help="redeploy: the node to move to")
    plan.add_argument("--image", help="deploy: the new image")
    plan.add_argument("--volume-size", help="resize: the new volume size")
    plan.add_argument("--cpu", help="scale (Database): the new CPU request")
    plan.add_argument("--memory", help="scale (Database): the new memory request")
    backup = plugin_command("backup", "back up a Database now (an Operation of type backup); follows it until it ends")
    backup.add_argument("database", help="db/NAME")
    backup.add_argument("--no-wait", action="store_true", help="create the operation and return")
    backup.add_argument(
        "--dump",
        action="store_true",
        help="a logical dump (pg_dump, mysqldump, Redis' RDB) into the operator's store, not a VolumeSnapshot",
    )
    plugin_command("backups", "a Database's backups (its earlier incarnations' too)").add_argument(
        "database", help="db/NAME"
    )
    dashboard = plugin_command("dashboard", "the dashboard on localhost: Activity tabs, live operations, reports")
    dashboard.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    dashboard.add_argument("--no-open", action="store_true", help="do not open it in a browser")
    dashboard.add_argument(
        "--in-cluster",
        action="store_true",
        help="serve behind an auth proxy on every address, acting with each request's forwarded token",
    )
    activity = plugin_command("activity", "the namespace's weekly activity report")
    when = activity.add_mutually_exclusive_group()
    when.add_argument("--week", type=_iso_week, help="an ISO week such as 2026-W47 (default: this week)")
    when.add_argument("--since", type=date.fromisoformat, metavar="DATE", help="every week from DATE (YYYY-MM-DD)")
    activity.add_argument("-o", "--output", choices=["csv", "table"], default="csv", help="csv (default) or table")
    return top


def _parameters(args: argparse.Namespace) -> dict[str, object]:
    """`plan --type`'s flags as the Operation's parameters."""
    parameters: dict[str, object] = {}
    if args.node:
        parameters["node"] = args.node
    if args.image:
        parameters["image"] = args.image
    if args.volume_size:
        parameters["volumeSize"] = args.volume_size
    requests = {k: v for k, v in (("cpu", args.cpu), ("memory", args.memory)) if v}
    if requests:
        parameters["resources"] = {"requests": requests}
    return parameters


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of lines (0 or more)")
    return int(value)


def _iso_week(value: str) -> str:
    from bosun.activity.report import week_start

    try:
        week_start(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


EXIT_CODES = """exit codes of status and logs -f: 0 succeeded, 1 error, 2 usage,
3 failed or cancelled and rolled back, 4 the rollback failed (something stays changed);
of plan: 0 it would run, 5 it would be refused"""


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings()
    changes: dict[str, object] = {}
    if args.all_namespaces:
        changes["namespaces"] = []
    elif args.namespace:
        changes["namespaces"] = list(args.namespace)
    if args.leader_elect is not None:
        changes["leader_election"] = args.leader_elect
    for name in ("liveness_port", "metrics_port", "log_format", "log_level"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(settings, **changes)  # type: ignore[arg-type]


def run_cli(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        from bosun.process import run

        run(settings_from(args))
        return 0
    if args.command in (
        "cancel",
        "approve",
        "override",
        "status",
        "logs",
        "activity",
        "plan",
        "dashboard",
        "backup",
        "backups",
    ):
        return _plugin(args)
    parser().print_help(sys.stderr)
    return 2


def _plugin(args: argparse.Namespace) -> int:
    from bosun.cli import commands

    out, err = sys.stdout, sys.stderr
    try:
        if args.command == "dashboard" and args.in_cluster:
            from bosun.cli import dashboard

            return dashboard.run_forwarded(args.kubeconfig, args.context, args.port, out)
        conn = commands.connect(args.kubeconfig, args.context, args.namespace, args.as_user)
        if args.command == "cancel":
            return commands.cancel(conn, commands.operation_name(args.operation), out)
        if args.command == "approve":
            return commands.approve(conn, args.operation, args.plan, out)
        if args.command == "override":
            return commands.override(conn, args.operation, args.window, args.budget, args.reason, out)
        if args.command == "dashboard":
            from bosun.cli import dashboard

            pinned = [args.namespace] if args.namespace else []
            return dashboard.run(conn, pinned, args.port, not args.no_open, out)
        if args.command == "status":
            return commands.status(conn, args.operation, out)
        if args.command in ("backup", "backups"):
            from bosun.cli import backups

            if args.command == "backup":
                return backups.backup(conn, args.database, not args.no_wait, out, err, dump=args.dump)
            return backups.backups(conn, args.database, out)
        if args.command == "logs":
            return commands.logs(
                conn, args.operation, args.follow, out, err, tail=args.tail, timestamps=args.timestamps
            )
        if args.command == "plan":
            if args.filename:
                return commands.plan_file(conn, args.filename, out, err)
            if not args.target:
                raise commands.CliError("plan --type needs --target app/NAME or database/NAME")
            return commands.plan_operation(conn, args.type, args.target, _parameters(args), out)
        return commands.activity(conn, args.week, args.since, args.output, out, err)
    except commands.CliError as error:
        print(f"error: {error}", file=err)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl bosun logs OP | head`: the reader has all it wanted
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush raises nothing
        return 0
    except Exception as error:  # after BrokenPipeError: no traceback reaches a user
        if os.environ.get("BOSUN_DEBUG") == "1":
            raise
        text = " ".join(str(error).split())
        print(
            f"error: {type(error).__name__}: {text[:300]}{' ...' if len(text) > 300 else ''}"
            " (this is a defect of kubectl-bosun; BOSUN_DEBUG=1 shows where)",
            file=err,
        )
        return 1
