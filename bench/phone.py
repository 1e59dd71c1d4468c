"""How fast mobile numbers normalise, before and after reading them directly.

    .venv/bin/python bench/phone.py [--count 100000] [--repeat 3]

Times tmc.lib.phone.normalise_mobile against the plain phonenumbers version it
replaced (parse, number_type, format_number; kept in
tmc.lib.tests.phone_reference) on three sets of numbers, and prints numbers/s
for each and the ratio. Time is the process's CPU time, best of ``--repeat``
runs, so that other work on a shared machine disturbs the figures less. Both
must give the same answers, which is checked after timing.

- UK mobiles: 074xx numbers written nationally, as a contact import sees them.
- international: mobiles from many regions written nationally, with "+" and
  with "00", plus landlines, toll-free numbers and numbers a digit short.
- odd shapes: what goes through phonenumbers.parse (letters, extensions,
  no-break spaces, "tel:"), to show the cost of falling back.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import phonenumbers
from phonenumbers import PhoneNumberType

from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.tests.phone_reference import reference_normalise_mobile

Case = tuple[str, str]
REGIONS = ["GB", "US", "FR", "DE", "IN", "AU", "BR", "CN", "NG", "JP", "CA", "JM"]
REGIONS += ["GG", "JE", "IM", "IE", "ES", "IT", "NL", "PL", "ZA", "MX", "AR", "KE"]
SEPARATORS = ["", "", " ", " ", "-", "."]


def _uk_mobiles(count: int, generator: random.Random) -> list[Case]:
    numbers = generator.sample(range(10_000_000), count)
    return [(f"074{n:08d}", "GB") for n in numbers]


def _written(generator: random.Random, region: str, kind: int) -> str:
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    national = phonenumbers.national_significant_number(example)
    # Change the last four digits: still of the type, almost always.
    national = national[:-4] + f"{generator.randrange(10_000):04d}"
    code = example.country_code
    style = generator.randrange(3)
    if style == 0:
        prefix = phonenumbers.ndd_prefix_for_region(region, True) or ""
        written = prefix + national
    elif style == 1:
        written = f"+{code}{national}"
    else:
        written = f"00{code}{national}"
    gap = generator.choice(SEPARATORS)
    # A gap after the first four characters and then every three.
    parts = [written[:4]] + [written[i : i + 3] for i in range(4, len(written), 3)]
    return gap.join(parts)


def _international(count: int, generator: random.Random) -> list[Case]:
    cases = []
    for _ in range(count):
        region = generator.choice(REGIONS)
        roll = generator.random()
        if roll < 0.85:
            kind = PhoneNumberType.MOBILE
        elif roll < 0.95:
            kind = PhoneNumberType.FIXED_LINE
        else:
            kind = PhoneNumberType.TOLL_FREE
        if phonenumbers.example_number_for_type(region, kind) is None:
            kind = PhoneNumberType.MOBILE
        written = _written(generator, region, kind)
        if generator.random() < 0.03:
            written = written[:-1]
        # Numbers written with "00" are read where that is the way out.
        cases.append((written, "GB" if written.startswith("00") else region))
    return cases


def _odd_shapes(count: int, generator: random.Random) -> list[Case]:
    shapes = ["07400\u00a0{0}", "07400 {0} ext. 12", "tel:+44-7400-{0}", "07400/{0}"]
    shapes += ["\uff10\uff17400 {0}", "Mobile: 07400 {0}"]
    return [
        (generator.choice(shapes).format(f"{generator.randrange(1_000_000):06d}"), "GB")
        for _ in range(count)
    ]


def _outcome(normalise: Callable[[str, str], str], raw: str, region: str) -> str:
    try:
        return normalise(raw, region)
    except InvalidNumber as refused:
        return f"refused: {refused.reason} {refused}"


def _rate(
    normalise: Callable[[str, str], str], cases: list[Case], repeat: int
) -> tuple[float, int]:
    """Numbers per CPU second over the best run, and how many were refused."""
    best = float("inf")
    for _ in range(repeat):
        refused = 0
        started = time.process_time()
        for raw, region in cases:
            try:
                normalise(raw, region)
            except InvalidNumber:
                refused += 1
        best = min(best, time.process_time() - started)
    return len(cases) / best, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    generator = random.Random(7)  # noqa: S311  # nosec B311
    sets = {
        "UK mobiles": _uk_mobiles(arguments.count, generator),
        "international": _international(arguments.count, generator),
        "odd shapes": _odd_shapes(arguments.count // 10, generator),
    }

    for name, cases in sets.items():
        old, refused = _rate(reference_normalise_mobile, cases, arguments.repeat)
        new, _ = _rate(normalise_mobile, cases, arguments.repeat)
        print(
            f"{name} ({len(cases):,} numbers, {refused:,} refused): "
            f"phonenumbers {old:,.0f}/s, normalise_mobile {new:,.0f}/s, "
            f"ratio {new / old:.1f}"
        )
        for raw, region in cases:
            expected = _outcome(reference_normalise_mobile, raw, region)
            assert _outcome(normalise_mobile, raw, region) == expected, raw


if __name__ == "__main__":
    main()
