"""Options shared by several commands: space, data, device, store."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import torch

from wsnas.core.errors import WsnasError, shown
from wsnas.core.runtime import PRECISIONS, set_channels_last
from wsnas.spaces import SPACES, Arch, Space, get_space
from wsnas.spaces.base import check_memory

DEFAULT_STORE = "wsnas.db"

#: The largest seed any seed option takes. Seeds are stored as SQLite integers (signed 64 bits);
#: numpy's generators refuse negative seeds; torch's ``manual_seed`` takes up to 2**64-1, which the
#: seeds derived from a seed (``seed + 1``, ``2 * seed + 1``) stay within.
SEED_MAX = 2**63 - 1
SEED_RANGE = f"0..{SEED_MAX} (2**63-1)"


def integer_text(text: str, max_digits: int = 19) -> int | None:
    """The integer a decimal ``text`` (ASCII digits, an optional sign) writes, else None; ``ValueError``
    when it has more than ``max_digits`` digits (Python refuses to convert more than 4,300)."""
    raw = str(text).strip()
    if not re.fullmatch(r"[+-]?[0-9]+", raw):
        return None
    if len(raw.lstrip("+-").lstrip("0")) > max_digits:
        raise ValueError(raw)
    return int(raw)


def seed_arg(text: str) -> int:
    """argparse type of every seed option: an integer 0..SEED_MAX."""
    try:
        value = integer_text(text)
    except ValueError:  # an integer with too many digits to convert
        value = -1
    if value is None or not 0 <= value <= SEED_MAX:
        what = "is not an integer" if value is None else "is out of range"
        raise argparse.ArgumentTypeError(f"seed {shown(text)} {what}; accepted: integers {SEED_RANGE}")
    return value


def check_seeds(first: int, count: int, flag: str = "--first-seed") -> list[int]:
    """The consecutive seeds ``first .. first + count - 1``, refused past :data:`SEED_MAX`."""
    if first + count - 1 > SEED_MAX:
        raise WsnasError(f"{flag} {first} with {count} seeds reaches seed {first + count - 1}; accepted: "
                         f"seeds {SEED_RANGE}")
    return list(range(first, first + count))


def positive_int_arg(text: str) -> int:
    """argparse type of a count that must be at least 1 (``--threads``)."""
    try:
        value = integer_text(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not accepted; accepted: a positive integer")
    return value


#: How the options that take architectures read them (Space.resolve).
ARCH_RULE = ("an architecture is its name (tiny64: three digits 1-4 such as 434, or three op names; nb201: "
             "the official string; darts: a genotype) or its index 0..N-1 in decimal without leading zeros "
             "(so tiny64's 011 is neither)")

#: What a run id may be; it names the run in the store and, without --run-dir, its folder under wsnas-runs/.
RUN_ID_RULE = ("a run id is one or more names joined by '/', each of letters, digits and - _ . : = @ "
               "(not '.' or '..'), without a leading or trailing '/', e.g. supernet/uniform/0")
_RUN_ID_PART = re.compile(r"[A-Za-z0-9_.:=@-]+")


def check_run_id(run_id: str, what: str = "--run") -> str:
    """``run_id`` if it follows :data:`RUN_ID_RULE` (so it stays inside the folder it is joined to)."""
    parts = str(run_id).split("/")
    if not all(_RUN_ID_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise WsnasError(f"{what} {shown(run_id)} is not accepted; {RUN_ID_RULE}")
    return run_id


def run_id_arg(text: str) -> str:
    """argparse type of ``--run`` (and ``--experiment``): :func:`check_run_id`."""
    try:
        return check_run_id(text, "run id")
    except WsnasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_run_dir(path: str | os.PathLike, flag: str = "--run-dir") -> Path:
    """``path`` as a Path, refused when it (or a folder above it) exists and is not a directory: the
    first checkpoint would fail to be written there only after a whole epoch of training."""
    path = Path(path)
    for above in (path, *path.parents):
        if above.exists():
            if not above.is_dir():
                what = "is" if above == path else f"lies in {str(above)!r}, which is"
                raise WsnasError(f"{flag} {str(path)!r} {what} a file, not a directory; accepted: a directory, "
                                 "existing or to be created")
            break
    return path


def run_dir_from_args(args: argparse.Namespace, run_id: str) -> Path:
    """``--run-dir``, else ``wsnas-runs/<run id>`` (a default run id must be a folder name too), checked."""
    if args.run_dir:
        return check_run_dir(args.run_dir)
    try:
        check_run_id(run_id, "run id")
    except WsnasError as exc:
        raise WsnasError(f"{exc}; give --run NAME or --run-dir DIR") from None
    return check_run_dir(Path("wsnas-runs") / run_id)


def check_store_path(path: str | os.PathLike, flag: str = "--store") -> str:
    """A store to create must be a file in an existing directory (no folders are made up to it)."""
    p = Path(path).expanduser()
    if not p.exists() and not p.parent.is_dir():
        given = f"{flag} (or $WSNAS_STORE)" if os.environ.get("WSNAS_STORE") == str(path) else flag
        raise WsnasError(f"results store {str(path)!r}: its directory {str(p.parent)!r} does not exist; "
                         f"create it first, or give {given} a file in an existing directory")
    return str(path)


def add_space_options(p: argparse.ArgumentParser, default: str = "tiny64") -> None:
    p.add_argument("--space", default=default,
                   help=f"search space: {', '.join(SPACES)}, a space an installed package declares (entry points "
                        "'wsnas.spaces'), or MODULE:FACTORY, a function or Space class of an importable module "
                        f"(e.g. examples.my_space:make_space; see docs/spaces.md); default {default}")
    p.add_argument("--space-option", action="append", default=[], metavar="KEY=VALUE",
                   help="network option of the space, repeatable (tiny64: dil=5x5|3x3, "
                        "combine=concat|sum, bn_momentum=0.4, channels=16, stem_channels=48, cells=4; "
                        "nb201: channels=16, cells_per_stage=5, affine=true, track_running_stats=true; "
                        "darts: channels=36, layers=20, auxiliary=true, search_channels=16, "
                        "search_layers=8; mobile: resolution=224|32, width=1.0, widths=24,40,80,96,192,320, "
                        "bn_momentum=0.1, bn_eps=0.001; a MODULE:FACTORY space: the factory's keyword arguments); "
                        "widths and depths whose network's parameters would not fit in this machine's memory "
                        "to train are refused")


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits",
                   help="dataset: digits (embedded, default); cifar10, cifar100, ImageNet16-120 (their authors' "
                        "files, in --data-dir: --data cifar10 --data-dir ~/data/cifar-10-batches-py, --data cifar100 "
                        "--data-dir ~/data/cifar-100-python, --data ImageNet16-120 --data-dir ~/data/ImageNet16); "
                        "npz:PATH (numpy arrays x_train, y_train, x_test, y_test: --data npz:~/data/mine.npz); "
                        "folder:DIR (one sub-folder of images per class, needs Pillow: --data folder:~/data/flowers "
                        "--data-option size=64); an installed plugin's name (entry-point group wsnas.datasets: "
                        "--data mydata); package.module:function (a loader: --data mypkg.data:load)")
    p.add_argument("--data-dir", default=None,
                   help="directory of cifar10, cifar100 or ImageNet16-120 in its official layout (or a plugin's)")
    p.add_argument("--split-seed", type=seed_arg, default=0, help="seed of the train/valid/test split (default 0)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset option, repeatable: cifar10 valid_size=25000 (NB201's half split; default "
                        "5000), augment=none; cifar100 and ImageNet16-120 split=nb201 (default: train on every "
                        "training image, the test set halved into valid and test) or split=holdout (valid_size), "
                        "split_file=PATH (NB201's own halves); npz: valid_size, layout=nchw|nhwc; folder: size=32, "
                        "valid_size, test_size; augment=crop_flip|crop_flip_pad2|none; any dataset: limit=N (at "
                        "most N images per split, a class-balanced subset, for quick trials)")


TRAINING_OPTIONS = ("epochs", "batch_size", "lr", "lr_min", "momentum", "weight_decay", "grad_clip", "precision",
                    "lr_schedule_epochs")


def add_training_options(g) -> None:
    """The optimiser options every training command shares (unset: the dataset's default)."""
    g.add_argument("--epochs", type=int, help="training epochs")
    g.add_argument("--batch-size", type=int, help="mini-batch size")
    g.add_argument("--lr", type=float, help="initial learning rate (cosine schedule)")
    g.add_argument("--lr-min", type=float, help="final learning rate")
    g.add_argument("--lr-schedule-epochs", type=int, metavar="N",
                   help="period of the cosine schedule in epochs, at least --epochs (default: the run's epochs); "
                        "a longer one stops the run part-way down the curve, as GAEA's NAS-Bench-201 search "
                        "(25 epochs of a schedule set for 50)")
    g.add_argument("--momentum", type=float, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, help="weight decay")
    g.add_argument("--grad-clip", type=float, help="clip the gradient norm at this value")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (default) or bf16: forward passes under bf16 autocast (faster on CPUs with "
                        "AVX512-BF16 or AMX and on recent GPUs; changes the results beyond rounding, so it is "
                        "part of a run's settings)")


# children scored per forward pass (wsnas.nn.stacked) with --eval-arch-batch auto: stacking
# pays where kernel launches dominate (CUDA); on a CPU the larger tensors cost more than the
# calls they save (measured: 2-3x slower on this project's 2-core machine), so one at a time
EVAL_ARCH_BATCH_CUDA = 16


def add_eval_options(g) -> None:
    """How children are scored: BN mode, recalibration batches, children per forward pass."""
    from wsnas.evaluator import BN_MODES

    g.add_argument("--bn-mode", choices=BN_MODES, default="running",
                   help="BN statistics when scoring children (default running, as the 64-child paper)")
    g.add_argument("--recal-batches", type=int, default=10, help="batches for --bn-mode recal")
    add_arch_batch_option(g, "--bn-mode recal recalibrates the N children together")


def add_arch_batch_option(g, recal_note: str) -> None:
    """``--eval-arch-batch``: children scored per stacked forward pass (``recal_note``: what it
    does to recalibration)."""
    g.add_argument("--eval-arch-batch", default="auto", metavar="N",
                   help=f"score N children per forward pass; auto (default): {EVAL_ARCH_BATCH_CUDA} on CUDA, "
                        "1 on a CPU. The scores are the same up to floating-point rounding; N trades memory "
                        f"for speed ({recal_note})")


def arch_batch_from_args(args: argparse.Namespace) -> int:
    """``--eval-arch-batch`` as a number (auto: by ``--device``)."""
    value = str(args.eval_arch_batch).strip().lower()
    if value == "auto":
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        return EVAL_ARCH_BATCH_CUDA if str(device).startswith("cuda") else 1
    arch_batch = int(value) if value.isdigit() else 0
    if arch_batch < 1:
        raise WsnasError(f"--eval-arch-batch must be a positive integer or auto, got {args.eval_arch_batch!r}")
    return arch_batch


def eval_config_from_args(args: argparse.Namespace):
    from wsnas.evaluator import EvalConfig

    return EvalConfig(bn_mode=args.bn_mode, recal_batches=args.recal_batches, arch_batch=arch_batch_from_args(args))


def training_overrides(args: argparse.Namespace) -> dict:
    """The training options given on the command line, for ``TrainConfig.with_overrides``."""
    return {name: getattr(args, name) for name in TRAINING_OPTIONS}


def add_runtime_options(p: argparse.ArgumentParser, *, store_in_run_dir: bool = False) -> None:
    if store_in_run_dir:
        p.add_argument("--store", default=None,
                       help="results store, an SQLite file (default RUN_DIR/results.db)")
    else:
        p.add_argument("--store", default=os.environ.get("WSNAS_STORE", DEFAULT_STORE),
                       help=f"results store, an SQLite file (default $WSNAS_STORE or {DEFAULT_STORE}); a new "
                            "one is created only in an existing directory")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    p.add_argument("--threads", type=positive_int_arg, default=None,
                   help="CPU threads for torch, at least 1 (default: torch's)")
    p.add_argument("--channels-last", action="store_true",
                   help="run the networks channels-last (NHWC): 16-38%% less time per step on a 2-core CPU, "
                        "the same results up to floating-point rounding (default: PyTorch's NCHW)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_executor_options(p: argparse.ArgumentParser, what: str = "the ground-truth jobs") -> None:
    """``--executor local|processes|ray``, ``--workers`` and the Ray options, for commands with
    independent jobs."""
    g = p.add_argument_group("executor (where independent jobs run)")
    g.add_argument("--executor", default="local",
                   help=f"where {what} run: local (this process, one after the other; default), "
                        "processes (--workers processes of this machine, the cores shared out among them "
                        "as torch threads) or ray (Ray tasks on a local instance or a cluster; "
                        "pip install 'wsnas[ray]')")
    g.add_argument("--workers", type=positive_int_arg, default=None,
                   help="worker processes of --executor processes (default: as many as finish the jobs "
                        "soonest, one per core when they divide evenly; 9 jobs on 2 cores: 3)")
    g.add_argument("--ray-address", default=None,
                   help="Ray cluster to connect to ('auto' for the one `ray start --head` runs on this "
                        "machine, or HOST:PORT); default: start a private local instance")
    g.add_argument("--ray-cpus-per-job", type=float, default=1, help="CPUs per job (default 1)")
    g.add_argument("--ray-gpus-per-job", type=float, default=0,
                   help="GPUs per job, fractions allowed (0.5: two jobs per GPU); default 0 (CPU)")
    g.add_argument("--ray-max-retries", type=int, default=3,
                   help="reruns of a job whose worker died or that failed (default 3)")


def executor_from_args(args: argparse.Namespace):
    """The executor the command line asks for (``local`` unless ``--executor`` says otherwise)."""
    from wsnas.execution.executor import get_executor

    name = getattr(args, "executor", "local")
    if name in (None, "local"):
        return get_executor("local")
    if name == "processes":
        return get_executor(name, workers=args.workers)
    return get_executor(name, address=args.ray_address, cpus_per_job=args.ray_cpus_per_job,
                        gpus_per_job=args.ray_gpus_per_job, max_retries=args.ray_max_retries)


def _coerce(value: str):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not value.isascii():  # int() and float() would read other scripts' digits too
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def key_values(items, flag: str, example: str) -> dict:
    """``KEY=VALUE`` options of a repeatable ``flag``, the values coerced (true/false, int, float)."""
    options = {}
    for item in items:
        if "=" not in item:
            raise WsnasError(f"{flag} {item!r} must look like KEY=VALUE, e.g. {example}")
        key, value = item.split("=", 1)
        options[key.strip()] = _coerce(value.strip())
    return options


def add_sharing_options(g) -> None:
    """--sharing and --sharing-budget (see wsnas.supernet.sharing)."""
    g.add_argument("--sharing", default="full",
                   help="full (default), group:M[:similarity|random[@SEED]|file=PATH] or prefix:K")
    g.add_argument("--sharing-budget", choices=("paper", "equal"), default="paper",
                   help="group sharing: every group trains on every mini-batch (paper, M x compute; "
                        "default) or the mini-batches are dealt out to the groups (equal)")


def space_from_args(args: argparse.Namespace) -> Space:
    """The space with its ``--space-option`` values; options that make a network too large for this
    machine's memory are refused before any network is built (``wsnas.spaces.base.check_memory``)."""
    options = key_values(args.space_option, "--space-option", "dil=3x3")
    space = get_space(args.space, **options)
    if any(isinstance(v, int) and not isinstance(v, bool) for v in options.values()):  # a width or a depth
        check_memory(space)
    return space


def device_from_args(args: argparse.Namespace) -> torch.device:
    set_channels_last(bool(getattr(args, "channels_last", False)))
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise WsnasError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    name = args.device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise WsnasError(f"unknown device {name!r}; accepted: cpu, cuda, cuda:N, auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WsnasError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise WsnasError(f"unsupported device {name!r}; accepted: cpu, cuda, cuda:N, auto")
    return device


def data_from_args(args: argparse.Namespace, device: torch.device):
    from wsnas.data import load_dataset

    options = key_values(getattr(args, "data_option", []), "--data-option", "valid_size=25000")
    return load_dataset(args.data, data_dir=args.data_dir, device=device, split_seed=args.split_seed, **options)


def archs_from_args(space: Space, archs: str | None, sample: int | None, sample_seed: int) -> list[Arch]:
    """``all`` (or None), a comma-separated list of canonical strings or indices, or a seeded sample."""
    if sample is not None and archs is not None:
        raise WsnasError(f"--archs {shown(archs)} and --sample {sample} both choose the architectures; "
                         "accepted: one of them")
    if sample is not None:
        if sample < 1:
            raise WsnasError(f"--sample must be at least 1, got {sample}")
        return space.sample(sample, sample_seed)
    if archs is None or archs.strip() == "all":
        return list(space.enumerate())
    sep = ";" if ";" in archs else ("," if space.name == "tiny64" else ";")
    picked = [space.resolve(a) for a in archs.split(sep) if a.strip()]
    if not picked:
        raise WsnasError(f"--archs {archs!r} names no architecture; give 'all' or a list")
    return list(dict.fromkeys(picked))


#: What ``--tensorboard DIR`` writes for a command that trains supernets (wsnas.training.monitor).
TENSORBOARD_CURVES = ("live training curves as TensorBoard event files into DIR/<run id>: loss and accuracy per "
                      "step, loss, accuracy and learning rate per epoch, the children's mean accuracy and, with a "
                      "ground truth, GT-Tau after each evaluation, the architecture weights' entropy, PA&DA's "
                      "probabilities and the gradient variance when the run records them; a resumed run continues "
                      "its curves")


def add_tensorboard_option(g, what: str = TENSORBOARD_CURVES) -> None:
    """``--tensorboard DIR``: live TensorBoard scalars of a training command (``what``: what it writes)."""
    g.add_argument("--tensorboard", default=None, metavar="DIR",
                   help=f"write {what}; view them with `tensorboard --logdir DIR`. Needs pip install "
                        "'wsnas[tensorboard]'")


def tensorboard_from_args(args: argparse.Namespace) -> Path | None:
    """``--tensorboard DIR`` as a Path (None when not given), refused in one line when the tensorboard
    package is missing or DIR is a file."""
    if getattr(args, "tensorboard", None) is None:
        return None
    from wsnas.training.monitor import check_tensorboard

    path = check_run_dir(args.tensorboard, "--tensorboard")
    check_tensorboard(f"--tensorboard {shown(args.tensorboard)}")
    return path
