"""The ``mlff`` command line: ``mlff train``, ``mlff eval``, ``mlff deploy``, ``mlff info``, ``mlff md``."""

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


def _train(args: argparse.Namespace) -> int:
    from mlff.train.config import load_config
    from mlff.train.trainer import train

    config = load_config(args.config, args.overrides)
    try:
        train(config, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\nmlff train: interrupted; continue with `mlff train {args.config} ... --resume`", file=sys.stderr)
        return 130
    return 0


def _eval(args: argparse.Namespace) -> int:
    from mlff.train.dataset import LabelKeys, build_samples, read_configurations
    from mlff.train.evaluate import evaluate, load_predictor
    from mlff.train.metrics import format_table
    from mlff.train.statistics import species_not_in

    predict, cutoff, dtype, species = load_predictor(args.potential)
    keys = LabelKeys(args.energy_key, args.forces_key, args.stress_key, None, "config_type")
    configurations = read_configurations(args.data, keys, skip_bad=args.skip_bad)
    unknown = species_not_in(configurations, species)
    if unknown:
        raise ValueError(f"the data contain species {unknown} that {args.potential} was not trained on (species {species})")
    samples = build_samples(configurations, cutoff, dtype)
    metrics = evaluate(predict, samples, args.batch_size)
    print(f"{args.potential} on {len(samples)} configurations of {', '.join(args.data)} (meV units):")
    print(format_table({"data": metrics}))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(metrics, handle, indent=2)
    return 0


def _md(args: argparse.Namespace) -> int:
    from mlff.md import run_file

    return run_file(args.config, args.overrides)


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

    train = commands.add_parser("train", help="fit a potential as a YAML config says (see configs/)")
    train.add_argument("config", help="YAML training config")
    train.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. training.epochs=5")
    train.add_argument("--resume", action="store_true", help="continue exactly from OUTPUT_DIR/last.pt")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="errors of a checkpoint or deployed potential on labelled data")
    evaluate.add_argument("potential", help="checkpoint (.pt from training) or deployed potential file")
    evaluate.add_argument("data", nargs="+", help="labelled files ASE can read")
    evaluate.add_argument("--energy-key", default="energy")
    evaluate.add_argument("--forces-key", default="forces")
    evaluate.add_argument("--stress-key", default="stress")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--skip-bad", action="store_true", help="skip bad configurations (with a warning) instead of stopping")
    evaluate.add_argument("--json", help="also write the metrics (eV units) to this JSON file")
    evaluate.set_defaults(run=_eval)

    md = commands.add_parser("md", help="run molecular dynamics as a YAML file says (see md_runs/)")
    md.add_argument("config", help="YAML MD configuration")
    md.add_argument("overrides", nargs="*", help="key=value overrides (dotted for sections), e.g. steps=100 outputs.plot=null")
    md.set_defaults(run=_md)

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
