"""The ``mlff`` command line: ``mlff train``, ``mlff eval``, ``mlff deploy``, ``mlff average``, ``mlff info``, ``mlff md``."""

import argparse
import json
import sys
from typing import List, Optional


def _deploy(args: argparse.Namespace) -> int:
    import torch

    from mlff.export import deploy
    from mlff.train.checkpoint import deployment_metadata, load_checkpoint, run_errors

    potential, state = load_checkpoint(args.checkpoint)
    if args.dtype is not None:
        potential = potential.to(getattr(torch, args.dtype))
    # as training deploys it: a run's best.pt also brings the errors in its metrics.json
    metadata = {**state.get("metadata", {}), **deployment_metadata(state, run_errors(args.checkpoint, state))}
    info = deploy(potential, args.output, metadata, format=args.format)
    print(
        f"wrote {args.output}: {info['model_family']} potential ({info['dtype']}), species {info['species']}, "
        f"cutoff {info['cutoff']} A"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from mlff.train.config import load_config
    from mlff.train.trainer import train

    config = load_config(args.config, args.overrides)  # validated here, before any launch
    if args.nproc is not None:
        return _launch(args)
    try:
        train(config, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\nmlff train: interrupted; continue with `mlff train {args.config} ... --resume`", file=sys.stderr)
        return 130
    return 0


def _launch(args: argparse.Namespace) -> int:
    """``mlff train --nproc K``: the same command under ``torchrun --standalone --nproc_per_node=K``."""
    import os
    import subprocess

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    if "WORLD_SIZE" in os.environ:
        raise ValueError("--nproc cannot be used inside torchrun (which already started the processes): drop --nproc")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}"]
    command += ["-m", "mlff", "train", args.config, *args.overrides] + (["--resume"] if args.resume else [])
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        print(f"\nmlff train: interrupted; continue with `mlff train {args.config} ... --resume`", file=sys.stderr)
        return 130


def _eval(args: argparse.Namespace) -> int:
    import os

    from mlff.train import plots
    from mlff.train.dataset import LabelKeys, build_samples, read_configurations
    from mlff.train.evaluate import load_predictor, metrics, predictions
    from mlff.train.metrics import format_table
    from mlff.train.statistics import species_not_in

    predict, cutoff, dtype, species = load_predictor(args.potential)
    keys = LabelKeys(args.energy_key, args.forces_key, args.stress_key, None, "config_type")
    configurations = read_configurations(args.data, keys, skip_bad=args.skip_bad)
    unknown = species_not_in(configurations, species)
    if unknown:
        raise ValueError(f"the data contain species {unknown} that {args.potential} was not trained on (species {species})")
    samples = build_samples(configurations, cutoff, dtype)
    values = predictions(predict, samples, args.batch_size)
    errors = metrics(values)
    print(f"{args.potential} on {len(samples)} configurations of {', '.join(args.data)} (meV units):")
    print(format_table({"data": errors}))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(errors, handle, indent=2)
    if args.plot_dir is not None:
        if not plots.available():
            print("mlff eval: matplotlib is not installed: no parity plot", file=sys.stderr)
        else:
            os.makedirs(args.plot_dir, exist_ok=True)
            title = f"{os.path.basename(args.potential)} on {len(samples)} configurations"
            path = plots.write_parity(values, os.path.join(args.plot_dir, "parity.png"), title)
            print(f"parity plot: {path}" if path else "mlff eval: no labelled energies or forces to plot")
    return 0


def _average(args: argparse.Namespace) -> int:
    from mlff.train.average import average_checkpoints, ingredients

    paths = ingredients(args.checkpoints)
    average_checkpoints(paths, args.output)
    print(f"wrote {args.output}: the mean of the weights of {len(paths)} checkpoints")
    return 0


def _md(args: argparse.Namespace) -> int:
    from mlff.md import run_file

    return run_file(args.config, args.overrides)


def _info(args: argparse.Namespace) -> int:
    from mlff.export import read_metadata

    print(json.dumps(read_metadata(args.potential), indent=2, sort_keys=True))
    return 0


def _label(args: argparse.Namespace) -> int:
    import time

    from ase.calculators.calculator import CalculationFailed

    from mlff.label import PySCFCalculator, label_file
    from mlff.train.progress import ProgressLine

    started = time.perf_counter()
    line: Optional[ProgressLine] = None

    def progress(done: int, total: int) -> None:
        nonlocal line
        if line is None:
            line = ProgressLine("mlff label", total)
            line.started = started  # the rate counts the first structure too
        line.update(done, {})

    try:
        calculator = PySCFCalculator(
            args.method, args.basis, charge=args.charge, spin=args.spin, density_fit=args.density_fit, max_cycle=args.max_cycle
        )
        count = label_file(
            args.structures,
            args.output,
            calculator,
            index=args.index,
            energy_key=args.energy_key,
            forces_key=args.forces_key,
            skip_failed=args.skip_failed,
            progress=progress,
        )
    except (ImportError, CalculationFailed) as error:
        print(f"mlff label: error: {error}", file=sys.stderr)
        return 1
    finally:
        if line is not None:
            line.close()
    elapsed = time.perf_counter() - started
    print(f"wrote {args.output}: {count} structures labelled with {calculator.level_of_theory} (PySCF) in {elapsed:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlff", description="Machine-learned force fields for molecular dynamics.")
    commands = parser.add_subparsers(dest="command", required=True)

    deploy = commands.add_parser("deploy", help="turn a training checkpoint into one self-contained potential file")
    deploy.add_argument("checkpoint", help="checkpoint written by training (mlff.train.save_checkpoint)")
    deploy.add_argument("-o", "--output", required=True, help="the potential file to write (.pt, or .pt2 for AOTInductor)")
    deploy.add_argument(
        "--format",
        choices=["pt", "pt2"],
        help="pt: TorchScript (any device, dtype); pt2: AOTInductor package, compiled for CPU in one dtype "
        "(default: from the output's suffix)",
    )
    deploy.add_argument("--dtype", choices=["float32", "float64"], help="deploy in this dtype (default: the checkpoint's)")
    deploy.set_defaults(run=_deploy)

    train = commands.add_parser("train", help="fit a potential as a YAML config says (see configs/)")
    train.add_argument("config", help="YAML training config")
    train.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. training.epochs=5")
    train.add_argument("--resume", action="store_true", help="continue exactly from OUTPUT_DIR/last.pt")
    train.add_argument(
        "--nproc",
        type=int,
        metavar="K",
        help="train on K processes (DistributedDataParallel; the same as `torchrun --standalone --nproc_per_node=K -m mlff train ...`)",
    )
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
    evaluate.add_argument(
        "--plot-dir", default=".", help="folder for parity.png (predicted vs reference; default: the current folder)"
    )
    evaluate.add_argument("--no-plot", dest="plot_dir", action="store_const", const=None, help="write no parity plot")
    evaluate.set_defaults(run=_eval)

    average = commands.add_parser(
        "average", help="average the weights of checkpoints of one architecture (a model soup of fine-tuned runs)"
    )
    average.add_argument("checkpoints", nargs="+", help="checkpoints, or run folders (their last.pt)")
    average.add_argument("-o", "--output", required=True, help="the averaged checkpoint to write")
    average.set_defaults(run=_average)

    md = commands.add_parser("md", help="run molecular dynamics as a YAML file says (see md_runs/)")
    md.add_argument("config", help="YAML MD configuration")
    md.add_argument("overrides", nargs="*", help="key=value overrides (dotted for sections), e.g. steps=100 outputs.plot=null")
    md.set_defaults(run=_md)

    label = commands.add_parser("label", help="label molecules with DFT or HF energies and forces (PySCF) for training")
    label.add_argument("structures", help="molecules in any file ASE can read (no periodic cells)")
    label.add_argument("-o", "--output", required=True, help="labelled extended XYZ to write (what `mlff train` reads)")
    label.add_argument("--method", default="pbe", help="'hf' or an exchange-correlation functional: pbe, b3lyp, pbe0, ... (default pbe)")
    label.add_argument("--basis", default="def2-svp", help="a basis set PySCF knows (default def2-svp)")
    label.add_argument("--charge", type=int, default=0)
    label.add_argument("--spin", type=int, default=0, help="2S = number of unpaired electrons (not the multiplicity)")
    label.add_argument("--density-fit", action="store_true", help="density fitting: faster for larger molecules")
    label.add_argument("--max-cycle", type=int, default=100, help="SCF iterations before a structure counts as failed")
    label.add_argument("--index", default=":", help="which structures, ASE syntax (default ':' = all; '::10' every tenth)")
    label.add_argument("--energy-key", default="energy")
    label.add_argument("--forces-key", default="forces")
    label.add_argument("--skip-failed", action="store_true", help="leave out structures whose SCF fails (with a warning)")
    label.set_defaults(run=_label)

    info = commands.add_parser("info", help="print the metadata of a deployed potential file (.pt or .pt2)")
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
