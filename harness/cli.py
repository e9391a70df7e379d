"""What every script shares on the command line: a parser whose errors are one line, argument types
with clear errors, and the guard that turns a user's mistake into one line on stderr instead of a
traceback (entry_point). Each script keeps its own parser: its flags are its documentation."""

import argparse
import functools
import sys

from data import DATASETS, is_npz_path
from harness.errors import UserError

INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C (128 + SIGINT)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (argparse prints the whole usage first), exit status 2."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message):
        self.exit(2, f"error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text) -> str:
    """`text` as a single line, whatever newlines it holds."""
    return " ".join(str(text).split())


def entry_point(main):
    """Wrap a script's main(argv) -> status so that no traceback reaches the user.

    A UserError (a mistake the user can fix) is one line and exit status 2; an
    OSError (a full disk, a read-only folder) is one line and status 1; Ctrl-C
    is one line and status 130.
    """

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return INTERRUPTED

    return guarded


def _checked(text: str, convert, is_valid, requirement: str):
    """`convert(text)` if it parses and passes `is_valid`, else argparse's error naming the requirement."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not is_valid(value):  # also rejects nan, which fails every comparison
        raise argparse.ArgumentTypeError(f"must be {requirement}, not {text!r}")
    return value


LARGEST_COUNT = 2 ** 31 - 1  # TensorFlow counts steps, images and batch sizes in int32
LARGEST_FLOAT = 1e30  # float32 holds up to about 3.4e38; beyond 1e30 a schedule's products overflow
SEEDS = 2 ** 32  # numpy's and Keras's generators take seeds 0 .. 2**32 - 1


def positive_int(text: str) -> int:
    return _checked(text, int, lambda value: 1 <= value <= LARGEST_COUNT, f"a whole number from 1 to {LARGEST_COUNT}")


def count_up_to(largest: int):
    """An argument type for a whole number from 1 to `largest`."""
    def count(text: str) -> int:
        return _checked(text, int, lambda value: 1 <= value <= largest, f"a whole number from 1 to {largest:,}")
    return count


def seed_value(text: str) -> int:
    """--seed: a whole number every generator the project seeds accepts."""
    return _checked(text, int, lambda value: 0 <= value < SEEDS, f"a whole number from 0 to {SEEDS - 1}")


def positive_float(text: str) -> float:
    return _checked(text, float, lambda value: 0 < value <= LARGEST_FLOAT, f"a positive number up to {LARGEST_FLOAT:g}")


def fraction(text: str) -> float:
    return _checked(text, float, lambda value: 0 <= value < 1, "at least 0 and below 1")


def dataset_name(text: str) -> str:
    """A registered data set's name or a path ending in .npz (checked when it is loaded)."""
    if text in DATASETS or is_npz_path(text):
        return text
    raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of {', '.join(DATASETS)} "
                                     f"or give a .npz file's path")
