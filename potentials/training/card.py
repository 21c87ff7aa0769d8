"""Write a shipped potential's model card (potentials/NAME.md) from what its run produced.

    python potentials/training/card.py NAME [RECIPE]

RECIPE (default NAME) is the config the shipped run came from, potentials/training/RECIPE.yaml.
Reads potentials/NAME.pt (metadata), potentials/training/runs/RECIPE/{metrics.json,log.csv} and
potentials/checks/NAME/*.json, so every number in a card comes from a file, not from memory.
"""

import csv
import json
import os
import sys

from mlff.export import read_metadata

HERE = os.path.dirname(os.path.abspath(__file__))
POTENTIALS = os.path.dirname(HERE)

DATA = {
    "ethanol": (
        "rMD17 ethanol, split 01 (`rmd17/rmd17_ethanol_{train,test}_01.xyz`): 950 training and 50 "
        "validation configurations from the training file, 1000 test configurations; PBE/def2-SVP (ORCA). "
        "Source: andersx/rmd17-npz @ 4f6bb0a, licence CC0 (Christensen and von Lilienfeld, 2020)."
    ),
    "aspirin": (
        "rMD17 aspirin, split 01 (`rmd17/rmd17_aspirin_{train,test}_01.xyz`): 950 training and 50 "
        "validation configurations from the training file, 1000 test configurations; PBE/def2-SVP (ORCA). "
        "Source: andersx/rmd17-npz @ 4f6bb0a, licence CC0 (Christensen and von Lilienfeld, 2020)."
    ),
    "water": (
        "Liquid water, 64 H2O in a periodic 12.445 A cube (`water64/water64_deepmd.xyz`, 400 "
        "configurations): 320 training, 30 validation, 50 test, split at random with seed 0. The level of "
        "theory is not documented by the source (its example model was trained against PBE0). Source: "
        "deepmodeling/deepmd-kit @ bc902da : examples/water/data, licence LGPL-3.0 (the deepmd-kit repository's)."
    ),
    "si": (
        "Bulk silicon from the mlearn benchmark (`si_mlearn/Si_{training,test}.xyz`): 194 training, 20 "
        "validation, 25 test configurations (elastic strains, surfaces, vacancies, AIMD), VASP PBE. Stress "
        "converted from mlearn's raw kbar, compressive-positive values to ASE's convention (prepare_si.py). "
        "Source: materialsvirtuallab/mlearn @ 10c427a : data/Si (Zuo et al., J. Phys. Chem. A 124, 731, "
        "2020), licence BSD-3-Clause (the mlearn repository's)."
    ),
}

#: How the run actually went, where it differs from a plain `train.sh` run (by recipe).
HISTORY = {
    "ethanol": "The first 39 epochs ran under a 350-epoch cosine schedule; the run was then resumed with "
               "`training.epochs=150` (the learning rate was still within 3 % of its peak), to fit the session's CPU budget.",
    "ethanol_l2": "The first 19 epochs ran under a 360-epoch cosine schedule; the run was then resumed with "
                  "`training.epochs=300`, to fit the session's CPU budget. Epochs 11-84 ran beside two other jobs on "
                  "the machine's 2 cores (about 37 s an epoch instead of 17), and epoch 85's time includes a 17-minute "
                  "pause (the process was stopped while the test suite ran): the wall time above overstates the cost "
                  "by about 40 minutes.",
    "ethanol_l2_cycle3": "This is the third cosine cycle of one model: `ethanol_l2.yaml` (300 epochs, test F MAE "
                         "6.44 meV/A), then one epoch of `ethanol_l2_cycle2.yaml` (learning rate 2.5e-3; the rest of that run, "
                         "stopped at epoch 99, never beat its first epoch's validation loss, so its best.pt is that epoch), "
                         "then the 140 epochs counted above (`ethanol_l2_cycle3.yaml`, 2e-3 -> 2e-6, radial and readout MLPs "
                         "converted to the e3nn parameterization on load): 441 epochs in all. To reproduce, run the three "
                         "configs in that order, stopping the second after its first epoch. Epochs 1-60 ran beside a second "
                         "training and other jobs on the machine's 2 cores.",
    "ethanol_l2_cycle5": "This is the fifth cosine cycle of one model: `ethanol_l2.yaml` (300 epochs, test F MAE "
                         "6.44 meV/A), one epoch of `ethanol_l2_cycle2.yaml` (its only improving epoch; the run was stopped "
                         "at epoch 99), `ethanol_l2_cycle3.yaml` (140 epochs, 2e-3 -> 2e-6, 5.78 meV/A), "
                         "`ethanol_l2_cycle4.yaml` (140 epochs, 1.5e-3 -> 1.5e-6, 5.43 meV/A), then the 100 epochs counted "
                         "above (`ethanol_l2_cycle5.yaml`, 1e-3 -> 1e-6): 681 epochs in all, each cycle starting from the "
                         "best moving-average weights of the one before (`training.initial_weights`). To reproduce, run "
                         "the five configs in that order, stopping the second after its first epoch. Most epochs ran "
                         "beside a second training on the machine's 2 cores.",
    "aspirin_l2": "The first 91 epochs ran under a 300-epoch cosine schedule; the run was then resumed with "
                  "`training.epochs=210` (the learning rate stepped from 8.1e-3 to 5.6e-3), to finish within one "
                  "session. Most epochs ran beside a second training on the machine's 2 cores.",
    "ethanol_l2_cycle6": "This is the sixth cosine cycle of one model: `ethanol_l2.yaml` (300 epochs, test F MAE "
                         "6.44 meV/A), one epoch of `ethanol_l2_cycle2.yaml` (its only improving epoch; the run was stopped "
                         "at epoch 99), `ethanol_l2_cycle3.yaml` (140 epochs, 2e-3 -> 2e-6, 5.78 meV/A), "
                         "`ethanol_l2_cycle4.yaml` (140 epochs, 1.5e-3 -> 1.5e-6, 5.43 meV/A), `ethanol_l2_cycle5.yaml` "
                         "(100 epochs, 1e-3 -> 1e-6, 5.26 meV/A), then the 60 epochs counted above "
                         "(`ethanol_l2_cycle6.yaml`, 1e-3 -> 1e-6, forces_weight 1000 instead of 100): 741 epochs in all, "
                         "each cycle starting from the best moving-average weights of the one before "
                         "(`training.initial_weights`). To reproduce, run the six configs in that order, stopping the "
                         "second after its first epoch. Most epochs ran beside a second training on the machine's 2 cores.",
    "ethanol_l3_ddp_cycle2": "This is the second cosine cycle of one model, 64 channels with spherical harmonics to "
                             "l = 3: `ethanol_l3_ddp.yaml` (250 epochs, 0.01 -> 2e-5, forces_weight 100, test F MAE "
                             "4.96 meV/A), then the 150 epochs counted above (`ethanol_l3_ddp_cycle2.yaml`, 2e-3 -> 2e-6, "
                             "forces_weight 1000): 400 epochs in all, the second starting from the moving-average weights "
                             "of the first's last epoch, which git keeps as `potentials/training/carry/ethanol_l3_ddp.pt`. "
                             "To reproduce: `MLFF_TRAIN_PROCESSES=2 bash potentials/training/train.sh ethanol ethanol_l3_ddp`, "
                             "`bash potentials/training/park.sh carry ethanol_l3_ddp`, then the command above. Both cycles "
                             "ran on two processes with 3 configurations each per step; the first 12 epochs of the second "
                             "ran beside an environment install and short tests.",
    "ethanol_l3_ddp_cycle4": "This is the fourth cosine cycle of one model, 64 channels with spherical harmonics to "
                             "l = 3: `ethanol_l3_ddp.yaml` (250 epochs, 0.01 -> 2e-5, forces_weight 100, test F MAE "
                             "4.96 meV/A), `ethanol_l3_ddp_cycle2.yaml` (150 epochs, 2e-3 -> 2e-6, forces_weight 1000, "
                             "4.41 meV/A), `ethanol_l3_ddp_cycle3.yaml` (90 epochs, 1.5e-3 -> 1.5e-6, 4.22 meV/A), then the "
                             "150 epochs counted above (`ethanol_l3_ddp_cycle4.yaml`, 1e-3 -> 1e-6): 640 epochs in all, each "
                             "cycle starting from the moving-average weights of the one before at its last epoch, which git "
                             "keeps in `potentials/training/carry/` (`ethanol_l3_ddp.pt`, `ethanol_l3_ddp_cycle2.pt`, "
                             "`ethanol_l3_ddp_cycle3.pt`). To reproduce: `MLFF_TRAIN_PROCESSES=2 bash "
                             "potentials/training/train.sh ethanol ethanol_l3_ddp_cycle4` (the carried weights make the "
                             "earlier cycles optional). All cycles ran on two processes with 3 configurations each per step. "
                             "The run's own deploy step failed (the symmetric contraction's source was edited while it "
                             "trained, and TorchScript reads the source again), so this file was deployed afterwards from the "
                             "run's best.pt with the metadata the trainer writes (as `mlff deploy "
                             "runs/ethanol_l3_ddp_cycle4/best.pt -o ...` now does); `mlff eval` of the file gives the "
                             "test errors above.",
    "water": "The first 2 epochs ran under a 25-epoch cosine schedule; the run was then resumed with "
             "`training.epochs=12`, to fit the session's CPU budget.",
    "si": "The first 10 epochs ran under a 120-epoch cosine schedule; the run was then resumed with "
          "`training.epochs=50`, to fit the session's CPU budget.",
}

PUBLISHED = {
    "ethanol": (
        "Published rMD17 ethanol test MAE after long GPU trainings (Batatia et al. 2022, Table 1): "
        "MACE 0.4 meV / 2.1 meV/A, NequIP 0.4 / 2.8, PaiNN 2.7 / 10.0 (energy per molecule / forces)."
    ),
    "aspirin": (
        "Published rMD17 aspirin test MAE after long GPU trainings (Batatia et al. 2022, Table 1): "
        "MACE 2.2 meV / 6.6 meV/A, Allegro 2.3 / 7.3, NequIP 2.3 / 8.2, PaiNN 6.9 / 16.1 (energy per molecule / forces)."
    ),
    "water": (
        "No published errors for this small set; deepmd-kit's example reports none we can quote. The energy "
        "error is almost all one constant offset (MAE = RMSE, about 1.6 meV/atom): every configuration has the "
        "same composition, so the offset is not learnable separately from the reference energies and had not "
        "converged in 12 epochs. It shifts every energy equally and changes no force, MD or relative energy."
    ),
    "si": (
        "Zuo et al. (2020) compare GAP, MTP, NNP, SNAP and qSNAP on this set; their per-model errors are "
        "not restated here. DFT lattice constant of the data's equilibrium cell: 5.469 A."
    ),
}


def _read_json(path: str):
    with open(path) as handle:
        return json.load(handle)


def _errors_table(metrics: dict) -> str:
    rows = ["| split | E/atom MAE (meV) | E/atom RMSE (meV) | E/config MAE (meV) | F MAE (meV/A) | F RMSE (meV/A) | stress MAE (meV/A^3) |",
            "|---|---|---|---|---|---|---|"]
    for split in ("validation", "test"):
        values = metrics.get(split)
        if not values:
            continue

        def milli(key: str, kind: str) -> str:
            value = values.get(f"{key}_{kind}")
            return f"{1000 * value:.2f}" if value is not None else "-"

        rows.append(f"| {split} | {milli('energy_per_atom', 'mae')} | {milli('energy_per_atom', 'rmse')} | "
                    f"{milli('energy', 'mae')} | {milli('forces', 'mae')} | {milli('forces', 'rmse')} | {milli('stress', 'mae')} |")
    return "\n".join(rows)


def _budget(log_path: str, processes: int) -> str:
    with open(log_path) as handle:
        rows = list(csv.DictReader(handle))
    seconds = sum(float(row["seconds"]) for row in rows)
    where = ("one CPU thread of a shared 2-core machine" if processes == 1 else
             f"{processes} processes of one CPU thread each (torchrun, gloo) on a shared 2-core machine")
    return f"{len(rows)} epochs, {seconds / 3600:.2f} h wall time on {where} (other jobs ran beside it, so this overstates the cost)"


def _check_section(name: str, check_dir: str) -> str:
    if name in ("ethanol", "aspirin"):
        result = _read_json(os.path.join(check_dir, f"{name}_md.json"))
        verdict = "no bond broke" if result["stable"] else "a bond left the 0.5 A window: UNSTABLE"
        return (f"{result['simulated_ps']:.0f} ps of {result['ensemble']} (ASE, `md_check.py {name}`, from {result['system']}): "
                f"largest deviation of any covalent bond from its relaxed length {result['max_bond_deviation_A']:.3f} A "
                f"(criterion 0.5 A, Fu et al.): {verdict}. Mean temperature {result['mean_temperature_K']:.0f} K. "
                f"![bond deviations](checks/{name}/{name}_bonds.png)")
    if name == "water":
        result = _read_json(os.path.join(check_dir, "water_md.json"))
        verdict = "no molecule dissociated" if result["no_dissociation"] else "a molecule dissociated: UNSTABLE"
        return (f"{result['simulated_ps']:.0f} ps of {result['ensemble']} of the 64-molecule box (ASE, `md_check.py water`): "
                f"{verdict} (every O kept two H within 1.3 A at every check). Mean temperature "
                f"{result['mean_temperature_K']:.0f} K. First O-O RDF peak at {result['rdf_oo_first_peak_A']:.2f} A, height "
                f"{result['rdf_oo_first_peak_height']:.2f} (experiment: 2.80 A, about 2.5; water from PBE-type DFT is known to be over-structured). ![O-O RDF](checks/water/water_rdf.png)")
    result = _read_json(os.path.join(check_dir, "si_eos.json"))
    return (f"Diamond Si: lattice constant from a full cell relaxation (FrechetCellFilter + BFGS) "
            f"{result['relaxed_lattice_constant_A']:.4f} A, from a Birch-Murnaghan fit of the energy-volume curve "
            f"{result['eos_lattice_constant_A']:.4f} A, against DFT {result['dft_lattice_constant_A']:.3f} A "
            f"({100 * result['relative_error']:+.2f} %). Bulk modulus {result['eos_bulk_modulus_GPa']:.0f} GPa "
            f"(PBE about 89 GPa). ![E(V)](checks/si/si_eos.png)")


def main() -> None:
    name = sys.argv[1]
    recipe = sys.argv[2] if len(sys.argv) > 2 else name
    metadata = read_metadata(os.path.join(POTENTIALS, f"{name}.pt"))
    run = os.path.join(HERE, "runs", recipe)
    metrics = _read_json(os.path.join(run, "metrics.json"))
    processes = int(metrics.get("processes", 1))  # runs before mlff recorded it were all single-process
    command = (f"MLFF_TRAIN_PROCESSES={processes} " if processes > 1 else "") + \
        f"bash potentials/training/train.sh {name}" + (f" {recipe}" if recipe != name else "")
    hyperparameters = ", ".join(
        f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in sorted(metadata["hyperparameters"].items()) if key != "species")
    size_kb = os.path.getsize(os.path.join(POTENTIALS, f"{name}.pt")) / 1024
    text = f"""# {name}.pt

**Model**: {metadata['model_family']} ({hyperparameters}), species {metadata['species']},
{metadata['dtype']}, cutoff {metadata['cutoff']} A; {size_kb:.0f} kB. Trained with `{command}`
(config `potentials/training/{recipe}.yaml`, mlff {metadata['mlff_version']}, torch {metadata['torch_version']}).

**Data**: {DATA[name]}

**Training budget**: {_budget(os.path.join(run, 'log.csv'), processes)}. Best epoch {metrics['best_epoch']} of {metrics['epochs']};
the exponential moving average of the weights is what ships. {HISTORY[recipe]}

**Errors** (best EMA weights):

{_errors_table(metrics)}

{PUBLISHED[name]}

**Check**: {_check_section(name, os.path.join(POTENTIALS, 'checks', name))}

**Use**: `mlff.MLFFCalculator("potentials/{name}.pt")` in ASE, `MLPotential("mlff", modelPath="potentials/{name}.pt")`
in OpenMM, or `mlff md` (see md_runs/). Units: Angstrom, eV, eV/A, eV/A^3.
"""
    with open(os.path.join(POTENTIALS, f"{name}.md"), "w") as handle:
        handle.write(text)
    print(f"wrote potentials/{name}.md")


if __name__ == "__main__":
    main()
