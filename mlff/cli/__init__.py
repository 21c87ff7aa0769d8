"""The ``mlff`` command line: ``mlff deploy CHECKPOINT -o FILE`` (train, eval and md join here)."""

import argparse
import json
import sys
from typing import List, Optional


def _deploy(args: argparse.Namespace) -> int:
    from mlff.export import deploy
    from mlff.train.checkpoint import load_checkpoint

    potential, state = load_checkpoint(args.checkpoint)
    metadata = {
        "model_family": state["family"],
        "hyperparameters": state["config"],
        **state.get("metadata", {}),
    }
    info = deploy(potential, args.output, metadata)
    print(f"wrote {args.output}: {info['model_family']} potential, species {info['species']}, cutoff {info['cutoff']} A")
    return 0


def _info(args: argparse.Namespace) -> int:
    from mlff.export import read_metadata

    print(json.dumps(read_metadata(args.potential), indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlff", description="Machine-learned force fields for molecular dynamics.")
    commands = parser.add_subparsers(dest="command", required=True)

    deploy = commands.add_parser("deploy", help="turn a training checkpoint into one self-contained potential file")
    deploy.add_argument("checkpoint", help="checkpoint written by training (mlff.train.save_checkpoint)")
    deploy.add_argument("-o", "--output", required=True, help="the potential file to write (.pt)")
    deploy.set_defaults(run=_deploy)

    info = commands.add_parser("info", help="print the metadata of a deployed potential file")
    info.add_argument("potential")
    info.set_defaults(run=_info)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``mlff`` command. Errors print one clear line and exit with status 1."""
    import torch  # noqa: F401  (before anything that may import openmm)

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"mlff {args.command}: error: {error}", file=sys.stderr)
        return 1
