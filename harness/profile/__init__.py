"""TOML profiles: which model, which data, how to fine-tune, what a release must meet.

A profile is parsed with ``tomllib`` and checked against ``SCHEMA`` before any data
is read or any model loaded, so a typo fails in a second, not after an hour of
training. Every problem is reported at once, each line naming the file, the key,
the value and the allowed range.

Each section is a frozen dataclass (``TrainingSection``, ``GatesSection``, ...) and is the one
place a key is declared: its annotation gives the type and allowed words, ``setting(...)`` the
default, range and why; ``SCHEMA`` is derived from them. ``Profile.as_dict()`` gives the plain
nested dicts (lists, not tuples) that reports and cache keys hash.

``schema`` declares and checks one key, ``sections`` holds the sections, ``loading`` reads a file.
"""

from harness.profile.loading import (
    DEMO_PROFILE,
    Profile,
    default_profile_path,
    label_problems,
    load_profile,
    refuse_unknown_labels,
    validate_profile,
)
from harness.profile.schema import NUMBER, DeclaredSkip, Field, Section, check_value, setting
from harness.profile.sections import (
    ARRAY_SCHEMA,
    ARRAYS,
    EXPECTATION_SUFFIXES,
    REPORT_TO,
    SCHEMA,
    SECTIONS,
    SKIPPABLE,
    BaselineSection,
    BehaviourSection,
    DataSection,
    Expectation,
    GatesSection,
    ModelSection,
    OnnxSection,
    PerClassSection,
    SlicesSection,
    TokenizationSection,  # fmt: skip
    TrainingSection,
    per_label,
)

__all__ = [
    "ARRAYS",
    "ARRAY_SCHEMA",
    "DEMO_PROFILE",
    "EXPECTATION_SUFFIXES",
    "NUMBER",
    "REPORT_TO",
    "SCHEMA",
    "SECTIONS",
    "SKIPPABLE",
    "BaselineSection",
    "BehaviourSection",
    "DataSection",
    "DeclaredSkip",
    "Expectation",
    "Field",
    "GatesSection",
    "ModelSection",
    "OnnxSection",
    "PerClassSection",
    "Profile",
    "Section",
    "SlicesSection",
    "TokenizationSection",
    "TrainingSection",
    "check_value",
    "default_profile_path",
    "label_problems",
    "load_profile",
    "per_label",
    "refuse_unknown_labels",
    "setting",
    "validate_profile",
]
