"""``edgenas devices``: list, show, set up and calibrate measurement devices."""

from __future__ import annotations

import argparse
import json

from edgenas.cli.common import add_command
from edgenas.cli.json_flag import add_json_flag
from edgenas.errors import UserError
from edgenas.parsing import number

# The emulated phone stops by itself; a week is the longest it may be asked to stay.
MAX_LIFETIME_S = 7 * 24 * 3600.0


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "devices",
        help="list, inspect, set up and calibrate measurement devices",
        description=(
            "Devices come from the built-in catalog plus your own file\n"
            "(~/.config/edgenas/devices.toml or --devices-file), where an entry of the same\n"
            "name overrides the built-in one field by field."
        ),
        epilog=(
            "examples:\n"
            "  edgenas devices list\n"
            "  edgenas devices show openvino-cpu\n"
            "  edgenas devices setup pixel3a --runner ./onnxruntime_perf_test\n"
            "  edgenas devices calibrate cpu --space ldp --input 240x320 --n 25\n"
            "  edgenas devices emulate            a fake Pixel 3a behind a loopback adb server"
        ),
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="devices_action", metavar="ACTION")

    listing = add_command(
        actions,
        "list",
        help="every device and whether it is usable now",
        description="Every catalog device, its kind, and whether it can be used right now "
        "(phone connected? runner installed? OpenVINO plugin present?).",
    )
    add_catalog_arg(listing)
    add_json_flag(listing, "print JSON instead of a table")
    listing.set_defaults(func=run_list)

    show = add_command(
        actions,
        "show",
        help="one device's entry and live facts",
        description="Print a device's catalog entry and its live facts (CPU, OS, governor, "
        "temperature ...).",
        epilog="examples:\n  edgenas devices show cpu\n  edgenas devices show pixel3a --serial 8ABX0Y1Z",
    )
    show.add_argument("name", help="device name")
    add_catalog_arg(show)
    show.add_argument("--serial", default=None, help="adb serial when several phones are connected")
    add_json_flag(show, "print JSON")
    show.set_defaults(func=run_show)

    setup = add_command(
        actions,
        "setup",
        help="push an on-device runner to an Android phone and record it",
        description="Push the runner (onnxruntime_perf_test built for arm64-v8a, or TFLite's "
        "benchmark_model) to /data/local/tmp/edgenas/ and record it for this phone.",
        epilog="examples:\n  edgenas devices setup pixel3a --runner build/Android/Release/onnxruntime_perf_test",
    )
    setup.add_argument("name", help="Android device name (pixel3a, android, ...)")
    setup.add_argument("--runner", required=True, help="path of the runner binary on this machine")
    setup.add_argument(
        "--serial", default=None, help="adb serial when several phones are connected"
    )
    add_catalog_arg(setup)
    setup.set_defaults(func=run_setup)

    from edgenas.cli.predict_cmd import register_calibrate

    register_calibrate(actions)

    emulate = add_command(
        actions,
        "emulate",
        help="serve an emulated Pixel 3a on a loopback adb port (no phone needed)",
        description="Start a fake adb server on 127.0.0.1 that emulates a Pixel 3a. Point "
        "edgenas at it with ANDROID_ADB_SERVER_PORT, write the emulated runner with "
        "--write-runner PATH and install it with `edgenas devices setup pixel3a --runner "
        "PATH`, then profile with --device pixel3a; results say kind 'emulated'.",
        epilog=(
            "examples:\n"
            "  edgenas devices emulate --port 5038 &\n"
            "  export ANDROID_ADB_SERVER_PORT=5038\n"
            '  edgenas devices setup pixel3a --runner "$(edgenas devices emulate --write-runner /tmp/perf_test)"\n'
            "  edgenas profile model.onnx --device pixel3a"
        ),
    )
    emulate.add_argument(
        "--port",
        type=number(int, minimum=1, maximum=65535),
        default=5038,
        help="loopback port to listen on (1-65535)",
    )
    emulate.add_argument(
        "--lifetime",
        type=number(
            float,
            above=0,
            maximum=MAX_LIFETIME_S,
            choices_text=f"a positive number of seconds up to {MAX_LIFETIME_S:.0f} (a week)",
        ),
        default=1800,
        help="stop after this many seconds",
    )
    emulate.add_argument(
        "--write-runner",
        metavar="PATH",
        default=None,
        help="only write the emulated onnxruntime_perf_test runner to PATH and print PATH",
    )
    emulate.set_defaults(func=run_emulate)


def add_catalog_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--devices-file`` (the user device catalog) to ``parser``; bench uses it too."""
    parser.add_argument(
        "--devices-file",
        default=None,
        help="user device catalog (default ~/.config/edgenas/devices.toml)",
    )


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog

    catalog = load_catalog(args.devices_file)
    rows = []
    for entry in catalog.entries.values():
        availability = check_availability(entry)
        rows.append((entry, availability))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "kind": e.kind,
                        "usable": a.usable,
                        "status": a.reason,
                        "source": e.source,
                    }
                    for e, a in rows
                ],
                indent=2,
            )
        )
        return 0
    table = Table("device", "kind", "usable", "status")
    for entry, availability in rows:
        table.add_row(
            entry.name,
            entry.kind,
            "[green]yes[/green]" if availability.usable else "[red]no[/red]",
            availability.reason,
        )
    console = Console()
    console.print(table)
    if catalog.user_file:
        console.print(f"user catalog: {catalog.user_file}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from edgenas.devices.backends import make_backend
    from edgenas.devices.catalog import load_catalog

    entry = load_catalog(args.devices_file).get(args.name)
    options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
    backend = make_backend(entry, **options)
    availability = backend.availability()
    facts: dict = {}
    if availability.usable or entry.backend == "adb":
        try:
            facts = backend.live_facts() if entry.backend == "adb" else backend.facts()
        except UserError:
            facts = {}
    data = {
        "entry": entry.to_dict(),
        "usable": availability.usable,
        "status": availability.reason,
        "facts": facts,
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    console = Console()
    console.print(f"[bold]{entry.name}[/bold] ({entry.kind}, from {entry.source})")
    for key, value in entry.to_dict().items():
        if value not in ("", None) and key not in ("name", "source"):
            console.print(f"  {key}: {value}")
    state = "[green]usable[/green]" if availability.usable else "[red]not usable[/red]"
    console.print(f"{state}: {availability.reason}")
    if facts:
        console.print("live facts:")
        for key, value in facts.items():
            console.print(f"  {key}: {value}")
    return 0


def run_setup(args: argparse.Namespace) -> int:
    from edgenas.devices.backends.android import AndroidBackend
    from edgenas.devices.catalog import load_catalog

    entry = load_catalog(args.devices_file).get(args.name)
    if entry.kind != "android":
        raise UserError(f"{entry.name} is a {entry.kind} device; setup is only for Android phones")
    backend = AndroidBackend(entry, serial=args.serial)
    record = backend.setup(args.runner)
    print(
        f"installed {entry.runner} on {backend.serial} at {record['remote']} (sha256 {record['sha256'][:12]})"
    )
    print(f"try: edgenas profile MODEL.onnx --device {entry.name}")
    return 0


def run_emulate(args: argparse.Namespace) -> int:
    if args.write_runner:
        from edgenas.devices.emulator.runner import write_runner_script

        print(write_runner_script(args.write_runner))
        return 0
    from edgenas.devices.emulator.server import serve_forever

    try:
        serve_forever(args.port, args.lifetime)
    except OSError as err:
        raise UserError(
            f"cannot listen on 127.0.0.1:{args.port} ({err.strerror}); pick another --port"
        ) from None
    return 0
