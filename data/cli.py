"""Command-line pieces the scripts share: a help formatter and argument types with clear errors."""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where there is a default to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _checked(text: str, convert, is_valid, requirement: str):
    """`convert(text)` if it parses and passes `is_valid`, else argparse's error naming the requirement."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not is_valid(value):  # also rejects nan, which fails every comparison
        raise argparse.ArgumentTypeError(f"must be {requirement}, not {text!r}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, int, lambda value: value >= 1, "a positive whole number")


def positive_float(text: str) -> float:
    return _checked(text, float, lambda value: 0 < value < float("inf"), "a positive number")


def fraction(text: str) -> float:
    return _checked(text, float, lambda value: 0 <= value < 1, "at least 0 and below 1")


def dataset_name(text: str) -> str:
    """A registered data set's name or a path ending in .npz (checked when it is loaded)."""
    from data import DATASETS, is_npz_path

    if text in DATASETS or is_npz_path(text):
        return text
    raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of {', '.join(DATASETS)} "
                                     f"or give a .npz file's path")
