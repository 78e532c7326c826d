"""Parameters and FLOPs (multiply-adds, as NAS-Bench-201 counts them) of one architecture.

The architecture's standalone network is built for the dataset's classes and input size
(cifar10: 10 classes, 32x32; cifar100: 100, 32x32; ImageNet16-120: 120, 16x16; digits: 10,
8x8, one channel). Parameters count every learnable scalar (BN scale/shift included);
MFLOPs count the multiply-adds of convolutions and linear layers (bias included) / 1e6.

Examples:
  wsnas cost --space nb201 --arch '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|'
  wsnas cost --space nb201 --arch 123 --dataset ImageNet16-120 --json
  wsnas cost --space tiny64 --arch 434 --dataset digits
"""

from __future__ import annotations

import argparse
import json

from wsnas.commands.common import ARCH_RULE, add_space_options, space_from_args
from wsnas.spaces.cost import DATASETS, cost_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p, default="nb201")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help=f"the architecture; {ARCH_RULE}")
    which.add_argument("--genotype", dest="arch", metavar="TEXT",
                       help="alias of --arch (for spaces named by a genotype string)")
    p.add_argument("--dataset", default="cifar10",
                   help=f"dataset whose classes and input size to use ({', '.join(DATASETS)}; default cifar10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    space = space_from_args(args)
    arch = space.resolve(args.arch)
    cost = cost_of(space, arch, args.dataset)
    name = space.format(arch)
    if args.json:
        print(json.dumps({"space": space.name, "arch": name, "dataset": args.dataset, **cost}))
    else:
        print(f"space       {space.name}")
        print(f"arch        {name}")
        print(f"dataset     {args.dataset}")
        print(f"parameters  {cost['params']:,} ({cost['params_m']:.2f} M)")
        print(f"MFLOPs      {cost['mflops']:.2f}")
    return 0
